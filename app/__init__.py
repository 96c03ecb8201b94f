"""SpineScope's Streamlit app (UI only; the numbers come from `analysis`, the specs and edits from `spinenet`)."""

"""Tables the user can download: shown with every text cell neutralised for spreadsheets (the dataframe toolbar's
own CSV download exports what is shown) and offered as a CSV built by `app.exports.table_csv`."""
from __future__ import annotations

import streamlit as st

from app.exports import safe_frame, table_csv


def table(frame, key: str, file_name: str, **options) -> None:
    """Shows `frame` (text cells that a spreadsheet would run as a formula get a leading apostrophe; empty cells
    show as '-') and a small CSV download button under it."""
    st.dataframe(safe_frame(frame), key=key, placeholder="–", **options)
    st.download_button("CSV", table_csv(frame), file_name=file_name, mime="text/csv", key=f"{key}_csv",
                       on_click="ignore", icon=":material/download:", type="tertiary",
                       help="This table as a CSV file (cells that a spreadsheet would run as formulas are quoted)")

"""Tables the user can download: shown with every text cell neutralised for spreadsheets (the dataframe toolbar's
own CSV download exports what is shown) and offered as a CSV built by `app.exports.table_csv`.

Tables fit the page at 1366 x 768 without scrolling sideways: short column labels (`column`), narrow columns,
and the less important columns (`more`) shown only on request. The CSV always holds every column, as named in
the frame."""
from __future__ import annotations

import streamlit as st

from spinescope.app.exports import safe_frame, table_csv


# The input size column of the result tables: a square size is one number, another is "W x H" (so it is text).
INPUT_PX_COLUMN = st.column_config.TextColumn("px", help="input size in pixels (width x height when not square)",
                                              width=52)


def column(label: str, help: str | None = None, format: str | None = None, width: str = "small"):
    """Returns a narrow number column labelled `label` (the frame keeps its longer name for the CSV)."""
    return st.column_config.NumberColumn(label, help=help, format=format, width=width)


def table(frame, key: str, file_name: str, more=(), csv_only=(), **options) -> None:
    """Shows `frame` (text cells that a spreadsheet would run as a formula get a leading apostrophe; empty cells
    show as '-') and a small CSV download button under it. `more`: columns hidden until the user turns on the
    "more columns" toggle above the table; `csv_only`: columns in the CSV only."""
    extra = [name for name in more if name in frame.columns]
    shown = [name for name in frame.columns if name not in csv_only]
    if extra and not st.toggle(f"{len(extra)} more column{'s' if len(extra) > 1 else ''}", key=f"{key}_more",
                               help="Also show: " + ", ".join(extra)):
        shown = [name for name in shown if name not in extra]
    st.dataframe(safe_frame(frame), key=key, placeholder="–", column_order=shown, **options)
    st.download_button("CSV", table_csv(frame), file_name=file_name, mime="text/csv", key=f"{key}_csv",
                       on_click="ignore", icon=":material/download:", type="tertiary",
                       help="This table as a CSV file, every column (cells that a spreadsheet would run as "
                            "formulas are quoted)")

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


TABLE_WIDTH_PX = 900  # the main column at 1366 px with the sidebar open; a wider table scrolls sideways
MODEL_MIN_PX = 120
CHAR_PX = 7.4  # a generous average character width of the tables' 14 px Source Sans
CELL_PADDING_PX = 16  # both sides of a cell's text


def model_width(labels, other_px: int, minimum: int = MODEL_MIN_PX) -> int:
    """Returns a model-name column's width in pixels: its longest label's, within the room the other columns
    leave (`other_px`) and at least `minimum`."""
    longest = max((len(label) for label in labels), default=0)
    return max(minimum, min(round(CHAR_PX * longest) + CELL_PADDING_PX, TABLE_WIDTH_PX - other_px))


def fitted_columns(frame, columns: dict, key: str, more=()) -> dict:
    """Returns `columns` (a column config with fixed widths) with its "model" column as wide as the frame's labels
    need within the room left by the columns shown (`more` ones only with the table's "more columns" toggle on),
    and at least its configured width."""
    showing_more = bool(st.session_state.get(f"{key}_more"))
    others = sum(config["width"] for name, config in columns.items()
                 if name != "model" and name in frame and (showing_more or name not in more)
                 and isinstance(config.get("width"), int))
    width = model_width(frame["model"], others, minimum=columns["model"]["width"])
    return {**columns, "model": st.column_config.TextColumn("model", width=width)}


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

"""Errors never reach the page as tracebacks: each part of the app runs inside `guarded`."""
from __future__ import annotations

import logging

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from spinescope.app.markup import escape_md

LOG = logging.getLogger("spinescope.app")


def one_line(error: BaseException) -> str:
    """Returns the first line of an error's message (its type name when it has none), at most 300 characters."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def guarded(area: str, render, *args, **kwargs):
    """Runs `render(*args, **kwargs)`; an exception becomes one st.error line (the traceback goes to the server
    log) so that the rest of the page keeps working. Returns what `render` returned, or None after an error."""
    try:
        return render(*args, **kwargs)
    except (RerunException, StopException):
        raise
    except Exception as error:  # noqa: BLE001 - shown as one line, logged in full
        LOG.exception("error in %s", area)
        st.error(escape_md(f"Something went wrong in {area}: {one_line(error)}"))
        return None

"""Escaping of user-supplied strings (spec names, block ids, design names) before they go into Markdown or HTML."""
from __future__ import annotations

import html

from spinescope.spinenet.validate import printable

_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$&")


def escape_md(text) -> str:
    """Returns `text` with every Markdown/HTML special character backslash-escaped (renders literally), on one line:
    newlines and other characters that cannot be printed are shown as escapes (\\n, \\x1b, \\ud800) first. For any
    user-supplied text in st.markdown, captions, notes, labels and `help=` tooltips (all render Markdown)."""
    return "".join("\\" + char if char in _MARKDOWN_SPECIAL else char for char in printable(text))


def escape_html(text) -> str:
    """Returns `text` safe inside HTML element content and attribute values."""
    return html.escape(str(text), quote=True)

"""Escaping of user-supplied strings (spec names, block ids, design names) before they go into Markdown or HTML."""
from __future__ import annotations

import html
import re

from spinescope.spinenet.validate import printable

_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$&")
# What GitHub-flavoured Markdown turns into a link without any link syntax ("autolink literals", which Streamlit's
# renderer and GitHub's both follow): a scheme's ':' before '//' (http://, https://, and any other), 'mailto:' and
# 'xmpp:', 'www.' and the '@' of an e-mail address. A backslash before the ':', '.' or '@' breaks each of them and
# still renders the character itself. Applied to text that is already escaped Markdown.
_AUTOLINK = re.compile(r"(?<=[a-z0-9])(:)(?=\\?/\\?/)|(?<=\bmailto)(:)|(?<=\bxmpp)(:)|(?<=\bwww)(\.)"
                       r"|(?<=[a-z0-9._+\-])(@)", re.IGNORECASE)


def break_autolinks(markdown: str) -> str:
    """Returns Markdown source `markdown` with every autolink literal broken by a backslash escape ('http\\://x',
    'www\\.x', 'a\\@x', 'mailto\\:a'): the text renders the same characters, never as a link."""
    return _AUTOLINK.sub(lambda match: "\\" + next(group for group in match.groups() if group), markdown)


def escape_md(text) -> str:
    """Returns `text` with every Markdown/HTML special character backslash-escaped (renders literally), on one line:
    newlines and other characters that cannot be printed are shown as escapes (\\n, \\x1b, \\ud800) first, and
    bare URLs, 'www.' and e-mail addresses are broken so that they render as text, not links (`break_autolinks`).
    For any user-supplied text in st.markdown, captions, notes, labels and `help=` tooltips (all render Markdown)."""
    return break_autolinks("".join("\\" + char if char in _MARKDOWN_SPECIAL else char for char in printable(text)))


def escape_html(text) -> str:
    """Returns `text` safe inside HTML element content and attribute values."""
    return html.escape(str(text), quote=True)

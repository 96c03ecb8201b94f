"""Whether a text can name a file on this system, checked before the operating system is asked (which would raise
OSError 'File name too long' or ValueError 'embedded null byte')."""
from __future__ import annotations

import os

NAME_MAX, PATH_MAX = 255, 4096  # bytes in one file-name component and in a whole path (Linux, macOS)


def shown(text: str) -> str:
    """Returns `text` for a one-line message: escaped, and cut after 60 characters (its length said)."""
    return ascii(text[:60]) + (f"... ({len(text):,} characters)" if len(text) > 60 else "")


def file_name_problem(text: str) -> str | None:
    """Returns what keeps `text` from naming a file here (a NUL byte, text the file system cannot encode, a
    component over NAME_MAX bytes or a path over PATH_MAX bytes), without the text itself; None when it can."""
    if "\x00" in text:
        return "contains a NUL byte"
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        return "cannot be a file name here (it cannot be encoded)"
    longest = max(len(part) for part in encoded.split(os.fsencode(os.sep)))
    if longest > NAME_MAX:
        return f"is too long: a file name has at most {NAME_MAX} bytes, this one has {longest:,}"
    if len(encoded) > PATH_MAX:
        return f"is too long: a path has at most {PATH_MAX:,} bytes, this one has {len(encoded):,}"
    return None

"""Input sizes: normalized once, where they enter (the CLI, the app, the Python API), to a `Side`, the pair
(height, width) in pixels, which every function inside takes and keeps in its cache keys. A user writes a size as
images are described, WIDTHxHEIGHT: "1333x800" is 1333 pixels wide and 800 high, the tensor (N, 3, 800, 1333);
"640" is square. Only JSON, tables and messages keep the compact spelling (the int side of a square, else "WxH":
`size_to_json`, `size_label`); `compact` gives that form for kernels and strides, shown as one number when square.
A level-l feature map is ceil(H / 2^l) x ceil(W / 2^l) (docs/spinenet-facts.md, section 11).
"""
from __future__ import annotations

import re

Side = tuple[int, int]  # (height, width) in pixels: the one form of a size inside the package
InputSize = int | tuple[int, int]  # what a boundary accepts: a square side or a (height, width) pair

_SIZE = re.compile(r"\s*([-+]?[0-9]{1,12})\s*(?:[x×X]\s*([-+]?[0-9]{1,12})\s*)?")


def non_ascii_digit_problem(text, what: str) -> str | None:
    """Returns a one-line message when `text` writes a digit other than ASCII 0-9 ('６', '٤', '²'), else None.
    One rule for every number read from text (sizes, batches, memory sizes, time limits): ASCII digits only, as
    Python's int() and float() alone would take some of those digits and refuse others."""
    text = str(text)
    for char in text:
        if char.isdigit() and not "0" <= char <= "9":
            shown = ascii(text[:40]) + ("..." if len(text) > 40 else "")
            return f"{what} {shown} has the digit {ascii(char)}; write numbers with the ASCII digits 0-9"
    return None


def hw(size: InputSize) -> tuple[int, int]:
    """Returns (height, width) in pixels of a square side, a (height, width) pair (a JSON list too) or the "WxH"
    text that JSON and the history keep."""
    if isinstance(size, str):
        width, _, height = size.partition("x")
        return int(height or width), int(width)
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def normalize(size: InputSize) -> Side:
    """Returns the size as (height, width) in pixels: the form every function inside the package takes."""
    return hw(size)


def compact(size: InputSize) -> InputSize:
    """Returns a size, kernel, stride or scale as an int when both axes agree, else as a (height, width) tuple."""
    height, width = hw(size)
    return height if height == width else (height, width)


def is_square(size: InputSize) -> bool:
    """Whether the size's height equals its width."""
    height, width = hw(size)
    return height == width


def size_label(size: InputSize) -> str:
    """Returns "640" for a square size and "1333x800" (width x height, as the CLI takes it) otherwise."""
    height, width = hw(size)
    return str(height) if height == width else f"{width}x{height}"


def dims_label(size: InputSize) -> str:
    """Returns "640x640" or "1333x800": width x height, also for a square size."""
    height, width = hw(size)
    return f"{width}x{height}"


def size_text(size: InputSize) -> str:
    """Returns "640 px" or "1333x800 px" for messages and titles."""
    return f"{size_label(size)} px"


def feature_hw(size: InputSize, level: int) -> tuple[int, int]:
    """Returns (height, width) of a level-`level` feature map: ceil(side / 2**level) per axis, pixels."""
    height, width = hw(size)
    return -(-height // (2 ** level)), -(-width // (2 ** level))


def sides_within(size: InputSize, low: int, high: int) -> bool:
    """Whether both sides of `size` lie in [low, high] pixels."""
    return all(low <= side <= high for side in hw(size))


def level_label(size: InputSize, level: int) -> str:
    """Returns the side of a level-`level` map of a square input ("40"), else its width x height ("84x50")."""
    return size_label(feature_hw(size, level))


def parse_size(text: str, low: int, high: int, what: str = "input size") -> Side:
    """Returns the size written as "640" (square) or "1333x800" (width x height) with both sides in [low, high].
    Raises ValueError with a one-line message naming the text (escaped) otherwise."""
    match = _SIZE.fullmatch(str(text))
    problem = non_ascii_digit_problem(text, what)
    if problem:
        raise ValueError(problem)
    if not match:
        raise ValueError(f"{what} must be N or WIDTHxHEIGHT in pixels (e.g. 640 or 1333x800), got {str(text)[:40]!r}")
    width = int(match.group(1))
    height = int(match.group(2)) if match.group(2) else width
    for name, side in ((" width", width), (" height", height)) if match.group(2) else (("", width),):
        if not low <= side <= high:
            raise ValueError(f"{what}{name} {side} is out of range [{low}, {high}] pixels")
    return normalize((height, width))


def size_to_json(size: InputSize) -> int | str:
    """Returns the size as JSON keeps it: the int side when square, else "WxH"."""
    size = compact(size)
    return size if isinstance(size, int) else size_label(size)

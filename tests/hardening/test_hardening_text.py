"""Text that cannot be printed or encoded (lone surrogates, control characters, ANSI escapes, newlines, a trailing
newline that `$` would let through) is refused with one line showing the value escaped, and never reaches a
terminal raw; two block ids that print the same are impossible."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import dumps
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import BLOCK_ID_PATTERN, SpecError, find_problems, printable

ROOT = Path(__file__).resolve().parents[2]
BASE = spec_to_dict(load_builtin("spinenet-49"))
BAD_TEXT = ["\ud800", "\udfff", "\x1b[31m", "\x1b]0;title\x07", "\n", "\r", "\t", "\x00", "\x7f", "\x9b",
            "\u202e", "\u200b", "\u2028", "\ufeff"]


def _with(**fields):
    data = json.loads(json.dumps(BASE))
    data.update(fields)
    return data


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_name_that_cannot_be_printed_is_refused_escaped(bad):
    problems = find_problems(_with(name=f"Spine{bad}Net"))
    assert len(problems) == 1 and problems[0].startswith("name: contains a character that cannot be printed ")
    assert ascii(f"Spine{bad}Net") in problems[0] and problems[0].isprintable() and problems[0].isascii()


@pytest.mark.parametrize("bad", BAD_TEXT + ["\u0441", "\xa0", " "])
def test_block_id_is_plain_ascii(bad):
    data = _with()
    data["blocks"][3]["id"] = "b5" + bad
    problems = find_problems(data)
    assert any(f"id must be 1-32 letters, digits, '_' or '-', got {ascii('b5' + bad)}" in p for p in problems)
    assert all(p.isprintable() and p.isascii() for p in problems)


def test_trailing_newline_does_not_pass_the_id_pattern():
    assert BLOCK_ID_PATTERN.match("b5") and not BLOCK_ID_PATTERN.match("b5\n")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=8))
def test_ids_that_validate_print_differently(text):
    """An id passes only if it is printable ASCII from a fixed alphabet, so distinct ids never print alike."""
    if BLOCK_ID_PATTERN.match(text):
        assert text.isascii() and text.isprintable() and text.strip() == text and printable(text) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=3))
def test_every_spec_error_is_one_printable_line(problems):
    error = SpecError(problems)
    assert all(line.isprintable() for line in error.problems)
    assert str(error).isprintable()
    str(error).encode("utf-8")  # no lone surrogate survives


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_any_name_is_accepted_only_if_printable(name):
    problems = find_problems(_with(name=name))
    if not name.isprintable():
        assert problems
    for problem in problems:
        problem.encode("ascii")


def _run_cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONIOENCODING="ascii:strict")  # anything raw and non-ASCII would crash the print
    return subprocess.run([sys.executable, "-m", "spinescope", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def test_cli_on_a_lone_surrogate_name_and_an_ansi_file_name(tmp_path):
    """The 2 KB file of the issue: `validate` used to say ok and `analyze` to crash with a traceback."""
    spec_text = dumps(load_builtin("spinenet-49"), "json").replace('"SpineNet-49"', '"SpineNet\\ud800"')
    assert len(spec_text) < 4096
    surrogate = tmp_path / "surrogate.json"
    surrogate.write_text(spec_text)
    ansi = tmp_path / "evil\x1b[2J\x1b[31m\nname.json"
    ansi.write_text(dumps(load_builtin("spinenet-49"), "json").replace('"SpineNet-49"', '"\\u001b[31mred"'))
    for path, shown, problem in [(surrogate, "surrogate.json", "('\\ud800' at position 8)"),
                                 (ansi, "evil\\x1b[2J\\x1b[31m\\nname.json", "('\\x1b' at position 0)")]:
        for command in ("validate", "analyze"):
            result = _run_cli(command, str(path))
            assert result.returncode == 2, (command, result.stderr)
            assert "Traceback" not in result.stderr and "\x1b" not in result.stderr and result.stdout == ""
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and shown in lines[0] and problem in lines[0], (command, lines)

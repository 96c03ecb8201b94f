"""NAME@SIZE arguments: after a known built-in or an existing file, a bad size is refused as a size (one line that
names it, escaped and cut), never as an unknown built-in; a good one still gives that size; a file whose name
holds an '@' is still read as that file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spinescope.analysis.cli import CliError, load_spec_argument
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import dumps

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("size", ["abc", "", "64x", "64xabc", "1O0"])
def test_a_bad_size_after_a_built_in_names_the_size(size):
    with pytest.raises(CliError) as info:
        load_spec_argument(f"spinenet-49@{size}")
    message = str(info.value)
    assert message.startswith(f"spinenet-49@{size}: input size ") and f"got {size!r}" in message
    assert "unknown built-in" not in message


def test_a_bad_size_after_a_file_names_the_size_and_a_file_named_with_an_at_is_that_file(tmp_path):
    path = tmp_path / "my@net.yaml"
    path.write_text(dumps(load_builtin("spinenet-49s"), "yaml"))
    assert load_spec_argument(str(path)) == (load_builtin("spinenet-49s"), None)
    assert load_spec_argument(f"{path}@96x64") == (load_builtin("spinenet-49s"), (64, 96))
    with pytest.raises(CliError) as info:
        load_spec_argument(f"{path}@big")
    assert "input size must be N or WIDTHxHEIGHT" in str(info.value) and "got 'big'" in str(info.value)


def test_a_long_bad_size_is_cut_and_a_good_one_still_works():
    with pytest.raises(CliError) as info:
        load_spec_argument("spinenet-49@" + "a" * 5000)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)
    assert load_spec_argument("spinenet-49@128") == (load_builtin("spinenet-49"), (128, 128))
    with pytest.raises(CliError, match=r"^spinenet-49@ 128: input size ' 128' has spaces"):
        load_spec_argument("spinenet-49@ 128")
    with pytest.raises(CliError, match="unknown built-in 'nosuchnet'"):
        load_spec_argument("nosuchnet@128")


def test_compare_with_a_bad_size_is_one_line_naming_it():
    result = subprocess.run([sys.executable, "-m", "spinescope", "compare", "spinenet-49@abc", "resnet50-fpn"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("error: spinenet-49@abc: input size must be N or WIDTHxHEIGHT in pixels (e.g. 640 or "
                             "1333x800), got 'abc'\n")


def test_compare_names_a_bad_size_before_counting_the_specs():
    result = subprocess.run([sys.executable, "-m", "spinescope", "compare", "spinenet-49@abc"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: spinenet-49@abc: input size must be N or WIDTHxHEIGHT")

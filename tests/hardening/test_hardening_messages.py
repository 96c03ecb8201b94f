"""Messages that said the wrong thing, and one rule for digits: a tuple list with a comment right after `[` is read
as a tuple list (not 'invalid YAML/JSON'); an empty list is 'the list is empty' (not 'must be a mapping ... got
str'); `--fit 1EiB` is inside the range its message gives ([1 B, 1 EiB]); every number read from text (input
sizes, NAME@SIZE, batches, --fit, --timeout, --iters, tuple lists, the sweep's lists, SPINESCOPE_MAX_MEMORY_MIB)
takes the ASCII digits 0-9 only, and any other digit is one line naming it escaped."""
from __future__ import annotations

import argparse

import pytest

from spinescope.analysis.cli import main
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import dumps_tuples, loads
from spinescope.spinenet.validate import SpecError

SPEC = load_builtin("spinenet-49")
TUPLES = dumps_tuples(SPEC)  # "[\n    (2, 'bottleneck', (0, 1), False),\n ..."
FULLWIDTH_640 = "\uff16\uff14\uff10"  # '640' in full-width digits
ARABIC_8 = "\u0668"  # '8' in Arabic-Indic digits


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPINESCOPE_MAX_MEMORY_MIB", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("text", [
    TUPLES.replace("[\n", "[  # SpineNet-49's blocks\n", 1),
    "SPINENET_BLOCK_SPECS = [  # the reference's name\n" + TUPLES[2:],
    "# a header\nSPINENET_BLOCK_SPECS = [# no space\n" + TUPLES[2:],
])
def test_a_tuple_list_with_a_comment_after_the_bracket_is_a_tuple_list(text, tmp_path, capsys):
    assert [block.id for block in loads(text, base=SPEC).blocks] == list(SPEC.block_ids)
    assert loads(text, base=SPEC).blocks == SPEC.blocks
    (tmp_path / "blocks.txt").write_text(text)
    assert main(["validate", "blocks.txt"]) == 0 and capsys.readouterr().out == "ok\n"


@pytest.mark.parametrize("text", ["[]", "SPINENET_BLOCK_SPECS = []", "[  # nothing yet\n]", "[\n\n]\n",
                                  "blocks = [\n  # (2, 'bottleneck', (0, 1), False),\n]"])
def test_an_empty_list_says_it_is_empty(text, tmp_path, capsys):
    with pytest.raises(SpecError) as info:
        loads(text)
    assert str(info.value) == "tuple list: the list is empty"
    (tmp_path / "blocks.txt").write_text(text)
    assert main(["validate", "blocks.txt"]) == 2
    assert capsys.readouterr().err == "blocks.txt: tuple list: the list is empty\n"


def test_fit_accepts_the_range_its_message_gives():
    from spinescope.analysis.memory.cli import memory_size

    assert memory_size("1EiB") == 2 ** 60 and memory_size("1 eib") == 2 ** 60
    assert memory_size("1PiB") == 2 ** 50 and memory_size("1EB") == 10 ** 18
    assert memory_size("1e9B") == 10 ** 9 and memory_size("1B") == 1  # the docstring's own examples
    for text in ("2EiB", "1.01EiB", "0.5B", "1e999"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"is out of range \[1 B, 1 EiB\]$"):
            memory_size(text)


def test_fit_one_eib_on_the_command_line(capsys):
    import json

    assert main(["memory", "spinenet-49s", "--input-size", "64", "--fit", "1EiB", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "fit" in json.dumps(data)
    assert main(["memory", "spinenet-49s", "--fit", "2EiB"]) == 2
    assert capsys.readouterr().err.endswith("memory size '2EiB' is out of range [1 B, 1 EiB]\n")


DIGIT = "has the digit '\\uff16'; write numbers with the ASCII digits 0-9"


@pytest.mark.parametrize("argv, message", [
    (["analyze", "spinenet-49s", "--input-size", FULLWIDTH_640],
     f"argument --input-size: input size '\\uff16\\uff14\\uff10' {DIGIT}"),
    (["analyze", "spinenet-49s", "--input-size", f"{FULLWIDTH_640}x512"],
     f"argument --input-size: input size '\\uff16\\uff14\\uff10x512' {DIGIT}"),
    (["analyze", f"spinenet-49s@{FULLWIDTH_640}"], f"input size '\\uff16\\uff14\\uff10' {DIGIT}"),
    (["memory", "spinenet-49s", "--fit", f"{FULLWIDTH_640}MiB"],
     f"argument --fit: memory size '\\uff16\\uff14\\uff10MiB' {DIGIT}"),
    (["memory", "spinenet-49s", "--batch", ARABIC_8],
     "argument --batch: batch '\\u0668' has the digit '\\u0668'; write numbers with the ASCII digits 0-9"),
    (["latency", "spinenet-49s", "--iters", "\u0665"],
     "argument --iters: iterations '\\u0665' has the digit '\\u0665'; write numbers with the ASCII digits 0-9"),
    (["latency", "spinenet-49s", "--timeout", f"{FULLWIDTH_640}"],
     f"argument --timeout: time limit '\\uff16\\uff14\\uff10' {DIGIT}"),
    (["sweep", "spinenet-49s", "--input-size", f"128,{FULLWIDTH_640}"],
     f"argument --input-size: input size '\\uff16\\uff14\\uff10' {DIGIT}"),
    (["sweep", "spinenet-49s", "--batch", f"1,{ARABIC_8}"],
     "argument --batch: batch '\\u0668' has the digit '\\u0668'; write numbers with the ASCII digits 0-9"),
    (["sweep", "spinenet-49s", "--input-size", "\u00b2"],
     "argument --input-size: input size '\\xb2' has the digit '\\xb2'; write numbers with the ASCII digits 0-9"),
])
def test_non_ascii_digits_are_refused_everywhere_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.isascii() and err.rstrip("\n").endswith(message), err


def test_non_ascii_digits_in_a_tuple_list_and_the_environment(monkeypatch):
    from spinescope.analysis.limits import ResourceLimitError, max_memory_bytes

    with pytest.raises(SpecError) as info:
        loads(TUPLES.replace("(2, 'bottleneck'", "(\uff12, 'bottleneck'", 1), base=SPEC)
    assert str(info.value) == ("tuple list: entry 1 has the digit '\\uff12'; write numbers with the ASCII digits "
                               "0-9")
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "\uff14\uff10\uff19\uff16")
    with pytest.raises(ResourceLimitError) as info:
        max_memory_bytes()
    assert str(info.value) == ("SPINESCOPE_MAX_MEMORY_MIB='\\uff14\\uff10\\uff19\\uff16' has a digit other than 0-9; "
                               "write the number with the ASCII digits 0-9 or unset it for the default")


def test_ascii_sizes_still_work(capsys):
    assert main(["analyze", "spinenet-49s@ 640", "--json"]) == 2  # a space is no size (unchanged)
    capsys.readouterr()
    assert main(["analyze", "spinenet-49s@640", "--json"]) == 0
    assert '"input_size": 640' in capsys.readouterr().out

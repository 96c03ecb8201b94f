"""A spec argument (or NAME@SIZE) that cannot be a file name on this system, in every subcommand that takes one:
a component longer than the 255-byte file-name limit, a path longer than 4,096 bytes, a NUL byte. Each is one
line naming the argument (escaped, cut after 60 characters) and the limit; never the OSError traceback."""
from __future__ import annotations

import pytest

from spinescope.analysis.cli import main

LONG_NAME = "b" * 300 + ".yaml"  # 305 bytes in one component
LONG_AT = "c" * 300 + "@640"  # a name that would be a built-in's NAME@SIZE
LONG_DIR = "d" * 256 + "/spec.yaml"  # the folder's name is the long component
LONG_PATH = "e/" * 2100 + "spec.yaml"  # short components, 4,209 bytes in all
WIDE = "\u00e9" * 200 + ".json"  # 205 characters, 405 bytes in UTF-8

COMMANDS = {
    "validate": lambda spec: ["validate", spec],
    "analyze": lambda spec: ["analyze", spec],
    "latency": lambda spec: ["latency", spec, "--device", "cpu", "--iters", "1", "--no-save"],
    "history": lambda spec: ["history", "--spec", spec],
    "compare": lambda spec: ["compare", "spinenet-49s", spec],
    "memory": lambda spec: ["memory", spec],
    "whatif": lambda spec: ["whatif", spec, "b1"],
    "sweep": lambda spec: ["sweep", spec, "--device", "cpu", "--no-save"],
}


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def _expected(argument: str, shown_name: str, limit: str, size: int) -> str:
    shown = ascii(shown_name[:60]) + f"... ({len(shown_name):,} characters)"
    return f"error: spec argument {shown} is too long: a {limit}, this one has {size:,}\n"


CASES = {
    "long name": (LONG_NAME, LONG_NAME, "file name has at most 255 bytes", 305),
    "long NAME@SIZE": (LONG_AT, "c" * 300, "file name has at most 255 bytes", 300),
    "long folder": (LONG_DIR, LONG_DIR, "file name has at most 255 bytes", 256),
    "long path": (LONG_PATH, LONG_PATH, "path has at most 4,096 bytes", 4209),
    "long in UTF-8": (WIDE, WIDE, "file name has at most 255 bytes", 405),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(CASES))
def test_a_spec_argument_too_long_for_a_file_name_is_one_line(capsys, command, case):
    argument, shown_name, limit, size = CASES[case]
    if command == "validate" and case == "long NAME@SIZE":  # validate takes a file, never NAME@SIZE
        shown_name, size = argument, 304
    status = main(COMMANDS[command](argument))
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err == _expected(argument, shown_name, limit, size)


@pytest.mark.parametrize("command", ["analyze", "validate"])
def test_a_nul_byte_is_one_line(capsys, command):
    assert main(COMMANDS[command]("spec\x00.yaml")) == 2
    assert capsys.readouterr().err == ("error: spec argument 'spec\\x00.yaml' contains a NUL byte; give a built-in "
                                       "name or a file path\n")


def test_a_long_file_that_exists_still_loads(tmp_path, capsys):
    from spinescope.spinenet.builtins import SPEC_DIR

    name = "s" * 250 + ".yaml"  # 255 bytes: the longest name the file system takes
    (tmp_path / name).write_bytes((SPEC_DIR / "spinenet-49s.yaml").read_bytes())
    assert main(["validate", name]) == 0 and capsys.readouterr().out == "ok\n"
    assert main(["analyze", f"{name}@128", "--json"]) == 0
    assert '"input_size": 128' in capsys.readouterr().out


@pytest.mark.parametrize("case", [name for name in CASES if "@" not in name])  # the API takes no @SIZE
def test_the_python_api_says_the_same_in_one_line(case):
    from spinescope import SpecError, create_backbone, load_spec

    argument, shown_name, limit, size = CASES[case]
    shown = ascii(shown_name[:60]) + f"... ({len(shown_name):,} characters)"
    for call in (load_spec, create_backbone):
        with pytest.raises(SpecError) as raised:
            call(argument)
        assert str(raised.value) == f"spec {shown}: not a built-in, and is too long: a {limit}, this one has {size:,}"


def test_the_python_api_refuses_a_nul_byte():
    from spinescope import SpecError, load_spec

    with pytest.raises(SpecError, match=r"^spec 'spinenet-49\\x00': not a built-in, and contains a NUL byte$"):
        load_spec("spinenet-49\x00")

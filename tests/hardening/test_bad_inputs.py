"""The corpus of bad inputs (tests/corpus/bad): each gets its precise one-line error, through the library
loader the app uses and through the CLI, with no traceback and no hang."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import dumps, load_spec_file, loads
from spinescope.spinenet.validate import SpecError

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "bad"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def test_corpus_is_large_and_complete():
    files = {path.name for path in CORPUS.iterdir()} - {"expected.json"}
    assert files == set(EXPECTED) and len(files) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_error(name):
    with pytest.raises(SpecError) as info:
        load_spec_file(CORPUS / name)
    message = str(info.value)
    assert EXPECTED[name] in message and "\n" not in message


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_upload_bytes_error(name):
    """The app's import path: raw bytes, format detected from the content."""
    data = (CORPUS / name).read_bytes()
    fmt = {".json": "json", ".yaml": "yaml"}.get(Path(name).suffix)
    with pytest.raises(SpecError) as info:
        loads(data, fmt)
    assert "\n" not in str(info.value)


def test_cli_on_every_bad_file():
    """One CLI process per file would take minutes; `validate` and `analyze` are run on each file in turn."""
    script = ("import sys, io, contextlib\nfrom analysis.cli import main\n"
              "for path in sys.argv[1:]:\n"
              "    for command in ('validate', 'analyze'):\n"
              "        err = io.StringIO()\n"
              "        with contextlib.redirect_stderr(err):\n"
              "            code = main([command, path])\n"
              "        print(repr((path, command, code, err.getvalue())))\n")
    paths = [str(CORPUS / name) for name in sorted(EXPECTED)]
    result = subprocess.run([sys.executable, "-c", script, *paths], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [eval(line) for line in result.stdout.splitlines()]  # our own repr output
    assert len(rows) == 2 * len(paths)
    for path, command, code, err in rows:
        name = Path(path).name
        assert code == 2, (name, command)
        assert EXPECTED[name] in err and "Traceback" not in err, (name, command, err)
        if command == "analyze":
            assert len(err.strip().splitlines()) == 1, (name, err)


@pytest.mark.parametrize("builder, message", [
    (lambda: b"{" + b" " * (2 << 20) + b"}", "over the 1,048,576-byte limit"),
    (lambda: json.dumps({"name": "x", "family": "spinenet", "blocks": [
        {"id": f"b{i}", "level": 3, "block_fn": "bottleneck", "parents": ["stem0", "stem1"]}
        for i in range(10**6)]}).encode(), "over the 1,048,576-byte limit"),
    (lambda: ("name: x\nfamily: spinenet\nblocks:\n" + "- {id: b, level: 3}\n" * 20000).encode(),
     "more than 5,000 values at line 1002"),  # refused while reading, before the 20,000 blocks are built
])
def test_huge_inputs_are_refused_quickly(builder, message):
    with pytest.raises(SpecError) as info:
        loads(builder())
    assert any(message in problem for problem in info.value.problems), info.value.problems


def test_good_spec_still_loads_after_bad_ones():
    spec = load_builtin("spinenet-49")
    for name in sorted(EXPECTED)[:5]:
        with pytest.raises(SpecError):
            load_spec_file(CORPUS / name)
    assert loads(dumps(spec, "json")) == spec

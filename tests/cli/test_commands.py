"""The command line as a user runs it: real subprocesses, exit codes, one-line errors."""
import json
from pathlib import Path

import pytest

from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.formats import dumps
from spinescope.spinenet.spec import spec_to_dict
from cli_runs import run

ROOT = Path(__file__).resolve().parents[2]


def test_list():
    result = run("list")
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(BUILTIN_NAMES)


def test_analyze_json():
    result = run("analyze", "spinenet-49s", "--input-size", "128", "--head", "retinanet", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("name", "input_size", "head", "params", "macs", "backbone_params", "backbone_macs", "head_params",
                "head_macs", "outputs", "blocks", "uncounted_ops"):
        assert key in data
    assert data["params"] == data["backbone_params"] + data["head_params"] == 11_265_942
    assert data["outputs"] == {"P3": [128, 16, 16], "P4": [128, 8, 8], "P5": [128, 4, 4], "P6": [128, 2, 2],
                               "P7": [128, 1, 1]}
    assert {"id", "level", "block_fn", "params", "macs"} <= set(data["blocks"][0])


def test_analyze_human_table_labels_units():
    result = run("analyze", "spinenet-mobile-49xs", "--input-size", "128")
    assert result.returncode == 0, result.stderr
    assert "MACs" in result.stdout and "FLOPs" in result.stdout and "b17" in result.stdout


def test_analyze_spec_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(dumps(load_builtin("spinenet-49s"), "yaml"))
    result = run("analyze", str(path), "--input-size", "96", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["input_size"] == 96


def test_validate(tmp_path):
    assert run("validate", "spinenet-49").stdout.strip() == "ok"
    good = tmp_path / "good.json"
    good.write_text(dumps(load_builtin("spinenet-49"), "json"))
    assert run("validate", str(good)).stdout.strip() == "ok"
    bad = tmp_path / "bad.json"
    data = spec_to_dict(load_builtin("spinenet-49"))
    data["blocks"][8]["parents"] = ["b8", "b99"]
    data["blocks"][11]["is_output"] = False
    bad.write_text(json.dumps(data))
    result = run("validate", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("bad.json: block 'b10': parents[1] 'b99' does not exist")
    assert lines[1] == "bad.json: outputs: no output block at level 3 (P3); exactly one is needed"


@pytest.mark.parametrize("args, message", [
    (("analyze", "nosuchnet"), "unknown built-in 'nosuchnet'"),
    (("analyze", "spinenet-49", "--input-size", "abc"), "input size must be N or WIDTHxHEIGHT"),
    (("analyze", "spinenet-49", "--input-size", "1000000"), "out of range"),
    (("analyze", "spinenet-49", "--head", "yolo"), "invalid choice"),
    (("analyze", "missing.json"), "no such file"),
    (("analyze", "spinenet-49@0"), "out of range"),
    (("frobnicate",), "invalid choice"),
    (("validate", "missing.yaml"), "no such file"),
    ((), "required"),
])
def test_bad_arguments_one_line_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_binary_garbage_file(tmp_path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)) * 10)
    result = run("analyze", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_validate_really_loads_a_builtin(tmp_path, monkeypatch, capsys):
    """`validate NAME` reads the built-in's file: a broken copy of assets/specs/ makes it fail."""
    import shutil

    import spinescope.analysis.cli
    import spinescope.spinenet.builtins
    from spinescope.analysis.cli import main

    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "assets" / "specs", specs)
    text = (specs / "spinenet-49.yaml").read_text()
    (specs / "spinenet-49.yaml").write_text(text.replace("block_fn: residual", "block_fn: mbconv", 1))
    monkeypatch.setattr(spinescope.analysis.cli, "SPEC_DIR", specs)
    assert main(["validate", "spinenet-49"]) == 2
    assert "mbconv" in capsys.readouterr().err


def test_a_16_block_model_garden_list_prints_the_apps_note(tmp_path):
    """The current Model Garden list (SpineNet-49's 15 blocks and an output block at level 2) loads with the note
    the app shows (from spinenet.formats.read_tuples), on stderr, for `validate` and for a command that counts."""
    from reference_counts import SPINENET_49 as tuples

    path = tmp_path / "garden.py"
    path.write_text("SPINENET_BLOCK_SPECS = [\n" + "".join(f"    {t!r},\n" for t in tuples)
                    + "    (2, 'bottleneck', (2, 13), True),\n]\n")
    note = ("note: entry 16 (b17, level 2) is an output in the list, but this spec's outputs are P3-P7: "
            "kept as a block without an endpoint, as the reference does with min_level 3")
    for command in (["validate", str(path)], ["analyze", str(path)], ["memory", str(path), "--input-size", "64"]):
        result = run(*command)
        assert result.returncode == 0, result.stderr
        assert [line for line in result.stderr.splitlines() if line.startswith("note:")] == [
            note + " (it feeds nothing, so it counts its params and 0 MACs; choose min level 2 to make it P2)"]
    # The 15-block list as published reads as written: no note.
    path.write_text("[\n" + "".join(f"    {t!r},\n" for t in tuples) + "]\n")
    assert "note:" not in run("validate", str(path)).stderr

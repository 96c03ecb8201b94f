"""`spinescope analyze` with the fast counter, --counter and --verify: real subprocesses, exit codes."""
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from spinescope.analysis import cli
from spinescope.analysis.counting import fast as fast_count
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.operators import OPERATORS

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # fvcore's real forward pass, on a machine shared with others
    return subprocess.run([sys.executable, "-m", "spinescope", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def analyze_json(*args):
    result = run("analyze", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_has_counter_verified_receptive_field_and_block_costs():
    data = analyze_json("spinenet-49", "--head", "retinanet")
    assert (data["counter"], data["verified"], data["differences"]) == ("fast", None, [])
    assert data["input_size"] == 640 and data["params"] == data["backbone_params"] + data["head_params"]
    assert abs(data["macs"] / 1e9 - 85.4) < 0.5 and abs(data["params"] / 1e6 - 28.5) < 0.1  # the paper's figures
    assert list(data["receptive_field"]) == ["P3", "P4", "P5", "P6", "P7"]
    assert data["receptive_field"]["P3"] == 1443 and all(isinstance(v, int) for v in data["receptive_field"].values())
    b3 = next(block for block in data["blocks"] if block["id"] == "b3")
    assert b3["params"] == b3["block_params"] + b3["resample_params"] and b3["resample_macs"] > 0
    assert b3["output_elements"] == 256 * 40 * 40 and 0 < b3["macs_share"] < 1 and b3["live"] is True


def test_name_at_size():
    data = analyze_json("spinenet-49@200")
    assert data["input_size"] == 200 and data["outputs"]["P3"] == [256, 25, 25]
    assert analyze_json("spinenet-49@200", "--input-size", "256")["input_size"] == 256


def test_verify_runs_fvcore_and_passes(capsys):
    data = analyze_json("resnet50-fpn@48", "--head", "retinanet", "--verify")
    assert (data["counter"], data["verified"], data["differences"]) == ("fast", True, [])
    assert cli.main(["analyze", "spinenet-mobile-49xs@64", "--head", "classification", "--verify"]) == 0
    assert "verified: fast and fvcore counts agree for every module" in capsys.readouterr().out


def test_fvcore_counter_gives_the_same_numbers(capsys):
    assert cli.main(["analyze", "resnet50-fpn@32", "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)
    slow = analyze_json("resnet50-fpn@32", "--counter", "fvcore")
    assert (fast.pop("counter"), slow.pop("counter")) == ("fast", "fvcore")
    assert fast == slow


def test_verify_fails_with_exit_1_when_the_fast_counter_is_wrong(monkeypatch, capsys):
    # A deliberate bug in the fast counter's batch-norm formula (3 x elements instead of fvcore's 2 x).
    rule = OPERATORS["batch_norm"]
    wrong = replace(rule, counted=lambda attrs, call: {op: 3 * n // 2 for op, n in rule.counted(attrs, call).items()})
    fast_count.clear_cache()
    monkeypatch.setitem(OPERATORS, "batch_norm", wrong)
    try:
        status = cli.main(["analyze", "spinenet-mobile-49xs@64", "--verify"])
    finally:
        fast_count.clear_cache()
    captured = capsys.readouterr()
    assert status == 1
    assert "NOT verified" in captured.out
    assert "the fast and fvcore counts differ" in captured.err
    assert "(model): batch_norm fast" in captured.err and "more differences" in captured.err


@pytest.mark.parametrize("args,message", [
    (("spinenet-49", "--counter", "guess"), "invalid choice: 'guess'"),
    (("spinenet-49@99999",), "out of range"),
    (("spinenet-49", "--verify", "--input-size", "-5"), "out of range"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, message):
    result = run("analyze", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert message in result.stderr


def test_fast_analysis_does_not_import_torch():
    code = ("import sys; from analysis.counting import analyze; from spinenet.builtins import load_builtin; "
            "a = analyze(load_builtin('spinenet-190'), 1280, 'retinanet'); "
            "print(a.params, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.split() == [str(fast_count.count_model(load_builtin("spinenet-190"), 1280,
                                                                 "retinanet").params[""]), "False"]

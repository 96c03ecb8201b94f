"""`spinescope compare`: real subprocesses; the paper's claim in numbers; NAME@SIZE; bad arguments."""
import json
import re
from pathlib import Path

import pytest

from spinescope.analysis.comparison.compare import builtin_name, compare
from spinescope.analysis.counting import analyze
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import dumps
from cli_runs import run

ROOT = Path(__file__).resolve().parents[2]


def compare_json(*args):
    result = run("compare", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_spinenet49_beats_resnet50_fpn_at_640_with_published_figures_beside():
    data = compare_json("spinenet-49", "resnet50-fpn", "--input-size", "640")
    spine, resnet = data["models"]
    assert (spine["name"], resnet["name"], data["head"]) == ("SpineNet-49", "ResNet-50-FPN", "retinanet")
    assert spine["macs"] < resnet["macs"] and spine["params"] < resnet["params"]
    assert spine["published"]["params_m"] == 28.5 and spine["published"]["macs_b"] == 85.4
    assert resnet["published"]["params_m"] == 34.0 and resnet["published"]["macs_b"] == 97.0
    assert spine["published"]["ap"] > resnet["published"]["ap"]
    assert (spine["params_ratio"], spine["macs_ratio"]) == (1.0, 1.0)
    assert resnet["macs_ratio"] == resnet["macs"] / spine["macs"] > 1
    assert spine["params"] == analyze(load_builtin("spinenet-49"), 640, "retinanet").params
    assert spine["outputs"]["P3"] == resnet["outputs"]["P3"] == [256, 80, 80]
    assert spine["receptive_field"]["P3"] > resnet["receptive_field"]["P3"]


def test_text_table_is_side_by_side_with_units_and_ratios():
    result = run("compare", "spinenet-49", "resnet50-fpn")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "SpineNet-49 @640" in lines[0] and "ResNet-50-FPN @640" in lines[0]
    rows = {re.split(r"\s{2,}", line.strip())[0]: line for line in lines[1:] if line.strip()}
    assert "28.54M (1.00x)" in rows["params"] and "34.09M (1.19x)" in rows["params"]
    assert "28.5M" in rows["published params"] and "97.0B" in rows["published MACs"]
    assert "MACs (multiply-adds)" in rows and "FLOPs (2 x MACs)" in rows
    assert "256x80x80" in rows["P3 shape (CxHxW)"] and " px" in rows["P7 receptive field"]


def test_each_spec_carries_its_own_input_size():
    data = compare_json("spinenet-96@1024", "resnet101-fpn@1024", "spinenet-49@896", "resnet50-fpn",
                        "--input-size", "640")
    sizes = [model["input_size"] for model in data["models"]]
    assert sizes == [1024, 1024, 896, 640]  # @SIZE wins; --input-size for the others
    assert [model["published"]["macs_b"] for model in data["models"]] == [265.4, 326.3, 167.4, 97.0]


def test_default_sizes_are_each_specs_own_and_published_needs_a_published_size():
    data = compare_json("spinenet-mobile-49", "spinenet-49s", "resnet152-fpn")
    assert [model["input_size"] for model in data["models"]] == [384, 640, 1280]
    data = compare_json("spinenet-49@512", "resnet50-fpn@512")
    assert [model["published"] for model in data["models"]] == [None, None]  # nothing published at 512
    data = compare_json("spinenet-49", "resnet50-fpn", "--head", "none")
    assert [model["published"] for model in data["models"]] == [None, None]  # published figures are with the head
    assert data["models"][0]["params"] == analyze(load_builtin("spinenet-49")).params


def test_a_spec_file_with_a_builtin_architecture_gets_its_published_figures(tmp_path):
    spec = load_builtin("spinenet-49")
    path = tmp_path / "mine.yaml"
    path.write_text(dumps(spec, "yaml").replace("name: SpineNet-49", "name: My copy"))
    data = compare_json(str(path), "resnet50-fpn")
    assert data["models"][0]["name"] == "My copy" and data["models"][0]["builtin"] == "spinenet-49"
    assert data["models"][0]["published"]["params_m"] == 28.5
    assert builtin_name(load_builtin("resnet101-fpn")) == "resnet101-fpn"


def test_compare_function_matches_analyze():
    rows = compare([(load_builtin("spinenet-mobile-49xs"), None), (load_builtin("spinenet-mobile-49"), 256)],
                   head="classification")
    assert rows[1]["input_size"] == 256
    expected = analyze(load_builtin("spinenet-mobile-49"), 256, "classification")
    assert (rows[1]["params"], rows[1]["macs"]) == (expected.params, expected.macs)
    assert rows[1]["params_ratio"] == expected.params / rows[0]["params"]


@pytest.mark.parametrize("args,message", [
    (("spinenet-49",), "compare needs at least two specs"),
    (("spinenet-49", "nosuchnet"), "unknown built-in 'nosuchnet'"),
    (("spinenet-49", "resnet50-fpn@31"), "out of range"),
    (("spinenet-49", "resnet50-fpn", "--input-size", "big"), "input size must be N or WIDTHxHEIGHT"),
    (("spinenet-49", "missing.json"), "no such file"),
    (("spinenet-49", "resnet50-fpn", "--head", "yolo"), "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, message):
    result = run("compare", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert message in result.stderr

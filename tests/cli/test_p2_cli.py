"""`spinescope analyze/validate` with min_level 2: a tuple list with --min-level 2 or 3, a spec file with
min_level 2, and the refusals (one line, exit 2)."""
import json
import math
from pathlib import Path

from p2_specs import FIFTEEN_TEXT, MODEL_GARDEN_TEXT, model_garden_spec
from spinescope.spinenet.formats import dumps_yaml
from cli_runs import run

ROOT = Path(__file__).resolve().parents[2]


def test_validate_a_tuple_list_at_min_level_3_and_2(tmp_path):
    path = tmp_path / "garden.txt"
    path.write_text(MODEL_GARDEN_TEXT)
    three = run("validate", str(path))
    assert (three.returncode, three.stdout) == (0, "ok\n")
    assert three.stderr.startswith("note: entry 16 (b17, level 2) is an output in the list") and \
        three.stderr.count("\n") == 1
    two = run("validate", str(path), "--min-level", "2")
    assert (two.returncode, two.stdout, two.stderr) == (0, "ok (outputs P2-P7)\n", "")
    (tmp_path / "fifteen.txt").write_text(FIFTEEN_TEXT)
    refused = run("validate", str(tmp_path / "fifteen.txt"), "--min-level", "2")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "min level 2 needs an output at level 2 (P2)" in refused.stderr


def test_analyze_a_p2_spec_file_lists_p2_to_p7(tmp_path):
    path = tmp_path / "p2.yaml"
    path.write_text(dumps_yaml(model_garden_spec(2)))
    assert run("validate", str(path)).stdout == "ok (outputs P2-P7)\n"
    result = run("analyze", f"{path}@200", "--head", "retinanet", "--json")
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)["outputs"]
    sides = {f"P{level}": math.ceil(200 / 2 ** level) for level in range(2, 8)}
    assert outputs == {name: [256, side, side] for name, side in sides.items()}
    text = run("analyze", f"{path}@200")
    assert "outputs: P2 256x50x50, P3 256x25x25," in text.stdout


def test_analyze_min_level_refusals_are_one_line():
    resnet = run("analyze", "resnet50-fpn", "--min-level", "2")
    assert resnet.returncode == 2 and resnet.stderr.count("\n") == 1
    assert "resnet_fpn produces P3-P7 only" in resnet.stderr and "Traceback" not in resnet.stderr
    fifteen = run("analyze", "spinenet-49", "--min-level", "2")
    assert fifteen.returncode == 2 and "choose one of the level-2 blocks (b2) as P2" in fifteen.stderr
    bad = run("analyze", "spinenet-49", "--min-level", "1")
    assert bad.returncode == 2 and "min level 1 is out of range [2, 7]" in bad.stderr

"""`spinescope analyze` with semantics, as a user runs it: Model Garden's list at min_level 3."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from model_garden_cases import MODEL_GARDEN_SPINENET_49

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "spinescope", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_analyze_model_gardens_list_with_model_garden_semantics(tmp_path):
    listing = tmp_path / "model_garden_list.txt"
    listing.write_text(MODEL_GARDEN_SPINENET_49, encoding="utf-8")
    garden = _cli("analyze", str(listing), "--semantics", "model_garden", "--json")
    assert garden.returncode == 0, garden.stderr
    data = json.loads(garden.stdout)
    assert data["params"] == 21_831_488 and data["semantics"] == "model_garden"
    assert data["dead_blocks"] == {"b17": "b17 feeds no block and is not an output"}
    assert "b17" not in [block["id"] for block in data["blocks"]]
    reference = json.loads(_cli("analyze", str(listing), "--json").stdout)
    assert reference["params"] == 21_968_640 and "semantics" not in reference
    text = _cli("analyze", str(listing), "--semantics", "model_garden").stdout
    assert text.splitlines()[0].endswith(", semantics: model_garden")
    assert ("  dead block b17: b17 feeds no block and is not an output; not built (Model Garden semantics)"
            in text.splitlines())


def test_a_spec_file_carries_its_semantics_and_a_bad_one_is_one_line(tmp_path):
    spec = tmp_path / "garden.yaml"
    text = _cli("analyze", "spinenet-49", "--json").stdout
    assert "semantics" not in json.loads(text)
    spec.write_text("name: x\nfamily: resnet_fpn\nstages: [3, 4, 6, 3]\nsemantics: model_garden\n", encoding="utf-8")
    result = _cli("validate", str(spec))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{spec.name}: semantics: model_garden applies to spinenet and spinenet_mobile only, not resnet_fpn (use reference)"]
    refused = _cli("analyze", "resnet50-fpn", "--semantics", "model_garden")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1

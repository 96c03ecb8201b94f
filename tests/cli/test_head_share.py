"""Backbone vs head shares where people look: `analyze` text and JSON. The head is two thirds of SpineNet-190's
MACs at 1280 px; the expected shares come from the independent count (reference_counts.py)."""
import json
import subprocess
import sys
from pathlib import Path

from reference_counts import spinenet_counts

ROOT = Path(__file__).resolve().parents[2]


def test_spinenet_190_head_is_two_thirds_of_the_macs_at_1280():
    params, macs, _ = spinenet_counts("spinenet-190", 1280, head=True)
    backbone_params, backbone_macs, _ = spinenet_counts("spinenet-190", 1280, head=False)
    head_macs, head_params = macs - backbone_macs, params - backbone_params
    assert 0.66 < head_macs / macs < 0.68
    command = [sys.executable, "-m", "spinescope", "analyze", "spinenet-190@1280", "--head", "retinanet"]
    data = json.loads(subprocess.run(command + ["--json"], cwd=ROOT, capture_output=True, text=True,
                                     timeout=300).stdout)
    assert data["head_macs_share"] == head_macs / macs and data["head_params_share"] == head_params / params
    text = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300).stdout
    assert (f"head:     params {head_params / 1e6:.2f}M, MACs {head_macs / 1e9:.2f}B "
            f"({100 * head_params / params:.0f}% of the params, {100 * head_macs / macs:.0f}% of the MACs)") in text
    assert f"({100 * backbone_params / params:.0f}% of the params, {100 * backbone_macs / macs:.0f}% of the MACs)" \
        in text


def test_the_per_block_share_is_of_the_backbones_macs_as_in_the_app():
    command = [sys.executable, "-m", "spinescope", "analyze", "spinenet-49s@256", "--head", "retinanet"]
    data = json.loads(subprocess.run(command + ["--json"], cwd=ROOT, capture_output=True, text=True,
                                     timeout=300).stdout)
    text = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300).stdout
    assert " % backbone " in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if len(line.split()) >= 8 and line.split()[1].isdigit()}  # block, level, type, params, MACs, share, ...
    assert set(rows) == {block["id"] for block in data["blocks"]}
    for block in data["blocks"]:
        assert rows[block["id"]][5] == f"{100 * block['macs'] / data['backbone_macs']:.1f}%"
    assert data["head_macs"] > data["backbone_macs"]  # at 256 px a share of the total would be under half of these

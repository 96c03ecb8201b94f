"""The head's share of the MACs in Explore (the totals' caption) and Compare (a column), through AppTest; the
expected share comes from the independent count (reference_counts.py)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from reference_counts import spinenet_counts, resnet_fpn_counts

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))


def run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def test_head_share_in_explore_and_compare():
    app = run(AppTest.from_file(str(APP), default_timeout=120))  # SpineNet-49 at 640 px, RetinaNet head
    params, macs, _ = spinenet_counts("spinenet-49", 640, head=True)
    backbone_params, backbone_macs, _ = spinenet_counts("spinenet-49", 640, head=False)
    expected = (f"The RetinaNet head is {100 * (macs - backbone_macs) / macs:.0f}% of the MACs and "
                f"{100 * (params - backbone_params) / params:.0f}% of the params.")
    assert any(expected in re.sub(r"\\(.)", r"\1", item.value) for item in app.caption)
    app.session_state["tab"] = "Compare"
    run(app)
    frame = next(item.value for item in app.dataframe if "head share of MACs %" in item.value.columns)
    r50, r50_macs, _ = resnet_fpn_counts("resnet50-fpn", 640, head=True)
    r50_backbone_macs = resnet_fpn_counts("resnet50-fpn", 640, head=False)[1]
    assert list(frame["head share of MACs %"])[:2] == [round(100 * (macs - backbone_macs) / macs, 1),
                                                      round(100 * (r50_macs - r50_backbone_macs) / r50_macs, 1)]

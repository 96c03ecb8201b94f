"""Per-block latency: the units timed inside the forward pass are the structure's modules, every unit's work is
hooked exactly once, the pure aggregation (medians, p10/p90, shares, the sum check), and `latency --per-block`
(table, JSON, history). Timing figures themselves are never asserted: they belong to benchmarks/bench_per_block.py."""
import json
import time

import pytest
import torch

from spinescope.analysis.cli import main
from spinescope.analysis.latency.history import get_results
from spinescope.analysis.latency.request import LatencyRequest, cuda_available
from spinescope.analysis.latency.results import block_rows, blocks_check, build_results, graph_node
from spinescope.analysis.latency.worker import make_block_timer, timed_units
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.describe import describe

CPU = ["--input-size", "64", "--iters", "3", "--warmup", "1", "--threads", "1", "--device", "cpu"]


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    return tmp_path


def _expected_units(name: str, head: str) -> list[str]:
    """The timed units read from the torch-free structure: backbone children, blocks' children, the head."""
    root = describe(load_builtin(name), 64, head).root
    units = []
    for child in root.child("backbone").children:
        units += [block.name for block in child.children] if child.local_name == "blocks" else [child.name]
    return units + (["head"] if root.has_child("head") else [])


@pytest.mark.parametrize("name,head", [("spinenet-49s", "retinanet"), ("resnet50-fpn", "none"),
                                       ("spinenet-mobile-49xs", "classification")])
def test_units_are_the_structures_modules_and_each_is_hooked_once(name, head):
    torch.manual_seed(0)
    model = build_model(load_builtin(name), head, 64).eval()
    images = torch.randn(1, 3, 64, 64)
    run = lambda: model(images)  # noqa: E731
    assert [unit_id for unit_id, _ in timed_units(model)] == _expected_units(name, head)
    with torch.inference_mode():
        timer = make_block_timer(model, run, torch.device("cpu"))
        timer.attach()
        started = time.perf_counter()
        run()
        wall_ms = (time.perf_counter() - started) * 1e3
        timer.detach()
        per_unit = timer.collect()
        spans = [len(s) for s in timer._spans]
    assert timer.ids == _expected_units(name, head)
    # Every unit ran, and the hooked intervals do not overlap: they fit in the pass that contains them.
    assert all(ms > 0 for ms in per_unit) and sum(per_unit) <= wall_ms
    if name == "resnet50-fpn":
        # The FPN's P blocks are never called as modules; their lateral / conv / bn are (P6, P7: conv, bn).
        counts = dict(zip(timer.ids, spans))
        assert [counts[f"backbone.blocks.P{level}"] for level in (3, 4, 5, 6, 7)] == [3, 3, 3, 2, 2]
        assert counts["backbone.blocks.c3_0"] == 1
    else:
        # The endpoints are a ModuleDict, never called: its P3..P7 convs are, one span each.
        counts = dict(zip(timer.ids, spans))
        levels = len(describe(load_builtin(name), 64, head).features)
        assert counts.pop("backbone.endpoints") == levels == 5 and set(counts.values()) == {1}
    # Detached: a further pass records nothing.
    with torch.inference_mode():
        run()
    assert [len(s) for s in timer._spans] == spans


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
def test_cuda_events_per_unit():
    device = torch.device("cuda")
    model = build_model(load_builtin("spinenet-49s"), "retinanet", 64, device=device).eval()
    images = torch.randn(1, 3, 64, 64, device=device)
    with torch.inference_mode():
        timer = make_block_timer(model, lambda: model(images), device)
        timer.attach()
        model(images)
        timer.detach()
        torch.cuda.synchronize()
    per_unit = timer.collect()
    assert len(per_unit) == len(_expected_units("spinenet-49s", "retinanet")) and all(ms > 0 for ms in per_unit)


def test_block_rows_by_hand():
    samples = [[1.0, 10.0, 3.0], [2.0, 30.0, 3.0], [4.0, 20.0, 3.0], [3.0, 40.0, 3.0]]
    rows = block_rows(["backbone.stem_conv", "backbone.blocks.b3", "head"], samples)
    assert [row["id"] for row in rows] == ["backbone.stem_conv", "backbone.blocks.b3", "head"]
    assert [row["node"] for row in rows] == [None, "b3", None]
    assert [row["median_ms"] for row in rows] == [2.5, 25.0, 3.0]
    assert rows[0]["p10_ms"] == pytest.approx(1.3) and rows[0]["p90_ms"] == pytest.approx(3.7)
    assert [row["share"] for row in rows] == pytest.approx([2.5 / 30.5, 25.0 / 30.5, 3.0 / 30.5])
    assert blocks_check(rows, 32.0) == (30.5, pytest.approx(-1.5 / 32.0))
    assert graph_node("backbone.blocks.c2_0") == "c2_0" and graph_node("backbone.endpoints") is None


def test_build_results_carries_the_blocks():
    figures = {"label": "m", "build_s": 0.1, "compile_s": None, "weight_bytes": 10, "activation_bytes": 5,
               "bn_folded": 0, "bn_remaining": 1, "samples_ms": [10.0, 12.0, 11.0],
               "hooked_samples_ms": [11.0, 13.0, 12.0], "block_ids": ["backbone.blocks.b2", "head"],
               "block_samples_ms": [[4.0, 6.0], [5.0, 6.5], [4.5, 7.0]]}
    message = {"models": [figures], "order": [0, 0, 0], "phases": {},
               "environment": {"torch_version": "x", "device_name": "cpu", "threads": 1}}
    (result,) = build_results([LatencyRequest(load_builtin("spinenet-49s"), 64)], message, [0], device="cpu",
                              warmup=1, run_id="r", created_at="t")
    assert [(row["id"], row["median_ms"]) for row in result.blocks] == [("backbone.blocks.b2", 4.5), ("head", 6.5)]
    assert result.blocks_sum_ms == 11.0 and result.blocks_sum_diff == 0.0  # 11.0 vs median 11.0
    assert result.hooked_median_ms == 12.0 and result.hook_overhead == pytest.approx(12.0 / 11.0 - 1)
    assert "block_samples_ms" not in result.to_dict() and result.to_dict(samples=True)["block_samples_ms"]


def test_latency_per_block_json_table_and_history(capsys):
    assert main(["latency", "spinenet-mobile-49xs", "resnet50-fpn", *CPU, "--per-block", "--json",
                 "--head", "retinanet"]) == 0
    first, second = json.loads(capsys.readouterr().out)
    for row, name in ((first, "spinenet-mobile-49xs"), (second, "resnet50-fpn")):
        assert [block["id"] for block in row["blocks"]] == _expected_units(name, "retinanet")
        medians = [block["median_ms"] for block in row["blocks"]]
        assert all(m > 0 for m in medians) and row["median_ms"] > 0
        assert row["blocks_sum_ms"] == pytest.approx(sum(medians))
        assert row["blocks_sum_diff"] == pytest.approx((sum(medians) - row["median_ms"]) / row["median_ms"])
        assert row["hook_overhead"] == pytest.approx(row["hooked_median_ms"] / row["median_ms"] - 1)
        assert sum(block["share"] for block in row["blocks"]) == pytest.approx(1.0)
        assert all(block["p10_ms"] <= block["median_ms"] <= block["p90_ms"] for block in row["blocks"])
        stored = get_results([row["history_id"]])[0].figures
        assert stored["blocks"] == row["blocks"] and len(stored["block_samples_ms"]) == 3

    assert main(["latency", "spinenet-mobile-49xs", *CPU, "--per-block", "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "per block: Mobile SpineNet-49XS" in out and "backbone.blocks.b2" in out and "median ms" in out
    assert "sum of block medians" in out and "vs end-to-end median" in out and "% vs without hooks" in out


def test_per_block_without_flag_has_no_blocks(capsys):
    assert main(["latency", "spinenet-mobile-49xs", *CPU, "--json", "--no-save"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["blocks"] == [] and row["blocks_sum_ms"] is None and row["hook_overhead"] is None


def test_per_block_with_compile_is_one_line(capsys):
    assert main(["latency", "spinenet-mobile-49xs", *CPU, "--per-block", "--compile"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "per-block timing cannot be combined with --compile" in err

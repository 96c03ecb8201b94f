"""The graph's time-share modes and the per-block shares behind them, without a browser: node size or colour from
a per-block run's time shares (never from the MACs), the colour bar and block legend saying which, the selection
ring kept, a fallback to type colours without a run; and the MACs / time shares of the timed graph nodes against a
second computation (the fast counter's module table) and hand sums."""
from __future__ import annotations

import pytest

from spinescope.analysis.counting import analyze, count_model
from spinescope.analysis.latency.block_shares import PerBlockRun, time_and_macs_shares
from spinescope.analysis.sweep.pareto import pareto_front
from spinescope.app.graph_figure import NODE_TRACE_NAME, SELECTED_COLOUR, SHAPE_ONLY_COLOUR, TYPE_STYLE, graph_figure
from spinescope.spinenet.builtins import load_builtin

SPEC = load_builtin("spinenet-49s")


def costs_of(spec, size):
    result = analyze(spec, size)
    return {block.id: {"params": block.params, "macs": block.macs, "share": block.macs / result.backbone_macs}
            for block in result.blocks}


def fake_run(spec, size=128):
    """A per-block run whose block i takes i + 1 ms, plus a stem conv and endpoints that are not graph nodes."""
    nodes = [block.id for block in analyze(spec, size).blocks]
    rows = [{"id": "backbone.stem_conv", "node": None, "median_ms": 50.0}]
    rows += [{"id": f"backbone.blocks.{node}", "node": node, "median_ms": float(i + 1)} for i, node in enumerate(nodes)]
    rows += [{"id": "backbone.endpoints", "node": None, "median_ms": 30.0}]
    total = sum(row["median_ms"] for row in rows)
    for row in rows:
        row.update(p10_ms=row["median_ms"] * 0.9, p90_ms=row["median_ms"] * 1.1, share=row["median_ms"] / total)
    return PerBlockRun("SpineNet-49S", size, "none", 1, "CPU", "fp32", "2026-01-01T00:00:00+00:00", total * 1.02,
                       rows, total, 0.02, total * 1.03, 0.01), nodes


def node_trace(figure):
    return next(item for item in figure.data if item.name == NODE_TRACE_NAME)


def test_time_and_macs_shares_of_the_timed_graph_nodes():
    run, nodes = fake_run(SPEC)
    rows = time_and_macs_shares(SPEC, run)
    assert [row["node"] for row in rows] == nodes  # stem conv and endpoints are not graph nodes: left out
    n = len(nodes)
    for i, row in enumerate(rows):  # hand sum: block i takes i + 1 ms of 1 + 2 + ... + n
        assert row["time_share"] == pytest.approx((i + 1) / (n * (n + 1) / 2))
    # MACs per node from the fast counter's module table (every module under backbone.blocks.<id>).
    counts = count_model(SPEC, 128)
    macs = {node: sum(counts.macs(module) for module in counts.params
                      if module.startswith(f"backbone.blocks.{node}.") and module.count(".") == 3)
            for node in nodes}
    total = sum(macs.values())
    for row in rows:
        assert row["macs"] == macs[row["node"]]
        assert row["macs_share"] == pytest.approx(macs[row["node"]] / total)
    assert sum(row["macs_share"] for row in rows) == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["time_size", "time_colour"])
def test_time_modes_take_the_time_shares_and_keep_the_selection(mode):
    run, nodes = fake_run(SPEC)
    times = {row["node"]: {"median_ms": row["median_ms"], "share": row["time_share"]}
             for row in time_and_macs_shares(SPEC, run)}
    figure = graph_figure(SPEC, 128, costs_of(SPEC, 128), mode, selected=nodes[3], times=times)
    trace = node_trace(figure)
    ids = [custom[0] for custom in trace.customdata]
    shares = [times.get(node, {}).get("share", 0.0) for node in ids]
    if mode == "time_colour":
        assert list(trace.marker.color) == pytest.approx(shares)
        assert trace.marker.colorbar.title.text == "time share"
        assert "colour = time" in figure.layout.legend2.title.text
        legend = {item.name: item.marker.color for item in figure.data if item.legend == "legend2"}
        assert legend["bottleneck"] == SHAPE_ONLY_COLOUR
    else:
        sizes = dict(zip(ids, trace.marker.size))
        timed = sorted((node for node in ids if node in times), key=lambda node: times[node]["share"])
        assert [sizes[node] for node in timed] == sorted(sizes[node] for node in timed)  # larger share, larger node
        assert sizes[timed[-1]] > sizes[timed[0]]
        assert trace.marker.colorbar.title.text is None
        assert "area = time" in figure.layout.legend2.title.text
    [ring] = figure.layout.shapes
    assert ring.line.color == SELECTED_COLOUR
    assert "time " in trace.hovertext[ids.index(nodes[3])] and "of the timed blocks" in trace.hovertext[ids.index(nodes[3])]


def test_a_time_mode_without_a_run_falls_back_to_type_colours():
    figure = graph_figure(SPEC, 128, costs_of(SPEC, 128), "time_colour", times=None)
    trace = node_trace(figure)
    assert TYPE_STYLE["bottleneck"][0] in list(trace.marker.color)
    assert trace.marker.colorbar.title.text is None and figure.layout.legend2.title.text == "blocks:"


def test_the_pareto_front_by_hand():
    # (MACs, latency ms): the front keeps the most MACs for the time.
    points = [(1.0, 10.0), (3.0, 12.0), (2.0, 15.0), (3.0, 20.0), (5.0, 30.0), (0.5, 10.0), (5.0, 30.0)]
    assert pareto_front(points) == [0, 1, 4, 6]
    assert pareto_front([]) == []

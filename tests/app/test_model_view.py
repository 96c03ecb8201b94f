"""One model view per (spec, size, head): what one edit shows (totals, graph with its connection costs, block
table, receptive fields, block pickers) resolves its layout once, describes the model once and counts it once."""
import uuid
from collections import Counter
from dataclasses import replace

from spinescope.analysis.counting import fast
from spinescope.analysis.counting.view import model_view
from spinescope.app import counts, selection
from spinescope.app.graph_figure import graph_figure
from spinescope.spinenet import describe as describe_module
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_level
from spinescope.spinenet.registry import family_of


def test_an_edit_describes_and_counts_its_model_once(monkeypatch):
    calls = Counter()
    real_describe, real_count = describe_module._describe, fast.count_layers

    def describe_spy(*args):
        calls["describe"] += 1
        return real_describe(*args)

    def count_spy(*args):
        calls["count"] += 1
        return real_count(*args)

    edited = set_level(load_builtin("spinenet-49"), "b7", 5)
    spec = replace(edited, name=f"view-{uuid.uuid4().hex}")  # no cache has seen it
    family = type(family_of(spec))
    real_resolve = family.resolve

    def resolve_spy(self, *args):
        calls["resolve"] += 1
        return real_resolve(self, *args)

    monkeypatch.setattr(describe_module, "_describe", describe_spy)
    monkeypatch.setattr(fast, "count_layers", count_spy)
    monkeypatch.setattr(family, "resolve", resolve_spy)
    view = model_view(spec, 320, "retinanet")
    graph_figure(spec, 320, counts.block_costs(spec, view.analysis), head="retinanet")
    counts.block_table(spec, view.analysis)
    selection.node_ids(spec, 320)  # the block pickers, which know no head
    assert view.analysis.receptive_field["P7"] > 0
    assert model_view(spec, 320, "retinanet") is view
    assert calls == {"describe": 1, "count": 1, "resolve": 1}


def test_the_view_agrees_with_its_parts():
    spec = load_builtin("spinenet-49")
    view = model_view(spec, (256, 384), "retinanet")
    assert view.layout is view.structure.layout
    assert view.analysis.macs == view.counts.macs("")
    assert view.analysis.params == view.counts.params[""]
    assert [node.id for node in view.layout.nodes] == [block.id for block in view.analysis.blocks]

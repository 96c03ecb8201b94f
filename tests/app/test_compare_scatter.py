"""Compare's MACs-vs-params plot as a figure (app.compare_tab.scatter_figure): every trace in the legend with one
colour, every published model labelled by its name and AP next to its own dot, SpineNet-190 too. The expected
names, APs and positions are read from assets/published.json and the built-ins directly, and the measured ones from
the counting library, never from the figure."""
from __future__ import annotations

import html
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from spinescope.analysis.counting import analyze
from spinescope.app.compare_tab import comparison_rows, scatter_figure
from spinescope.spinenet.builtins import load_builtin

PUBLISHED = json.loads((Path(__file__).resolve().parents[2] / "assets" / "published.json").read_text())["models"]


def text_of(annotation) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", annotation.text))


def figure_for(names: list[str], sizes: list[int], name_builtins: bool = False):
    """The plot of these built-ins at these sizes; `name_builtins`: tell it which built-in each spec is (as the
    tab does), so that a published model measured here at its published size is named by the measured label."""
    frame = comparison_rows([load_builtin(name) for name in names], sizes, "retinanet")
    return scatter_figure(frame, "retinanet", names) if name_builtins else scatter_figure(frame, "retinanet")


def anchored_at(annotation, x: float, y: float) -> bool:
    return math.isclose(10 ** annotation.x, x, rel_tol=1e-6) and math.isclose(10 ** annotation.y, y, rel_tol=1e-6)


@pytest.mark.parametrize("names, sizes", [(["spinenet-49", "resnet50-fpn"], [640, 640]),
                                          (["resnet50-fpn", "spinenet-96", "resnet101-fpn", "spinenet-143",
                                            "spinenet-190"], [640, 1024, 1024, 1280, 1280])])
def test_every_trace_is_in_the_legend_with_one_colour(home, names, sizes):
    figure = figure_for(names, sizes)
    marker_traces = [trace for trace in figure.data if "markers" in trace.mode]
    assert len(marker_traces) == 3  # the current spec, the others, the published models
    for trace in marker_traces:
        assert trace.showlegend is not False and trace.name
        assert isinstance(trace.marker.color, str), (trace.name, trace.marker.color)
    assert len({trace.marker.color for trace in marker_traces}) == 3
    current = next(trace for trace in marker_traces if trace.name.startswith("current"))
    assert list(current.x) == [analyze(load_builtin(names[0]), sizes[0], "retinanet").params / 1e6]


def test_every_published_model_is_labelled_with_its_name_and_ap_at_its_own_dot(home):
    annotations = list(figure_for(["spinenet-49", "resnet50-fpn"], [640, 640]).layout.annotations)
    for row in PUBLISHED:
        several = sum(other["builtin"] == row["builtin"] for other in PUBLISHED) > 1
        name = load_builtin(row["builtin"]).name + (f" @{row['input_size']}" if several else "")
        ap = f"AP {row['ap']}" if row["ap"] is not None else f"AP {row['ap_protocol_c']}, protocol C"
        labels = [text_of(a) for a in annotations if anchored_at(a, row["params_m"], row["macs_b"])]
        assert labels == [f"{name} ({ap})"], (name, labels)
    assert "SpineNet-190 (AP 52.1, protocol C)" in [text_of(a) for a in annotations]


@pytest.mark.parametrize("names, sizes", [(["spinenet-49", "resnet50-fpn"], [640, 640]),
                                          (["spinenet-49", "resnet50-fpn"], [1024, 1024])])
def test_a_published_model_measured_here_is_named_by_the_measured_label(home, names, sizes):
    figure = figure_for(names, sizes, name_builtins=True)
    annotations = list(figure.layout.annotations)
    for row in PUBLISHED:
        name = load_builtin(row["builtin"]).name
        ap = f"AP {row['ap']}" if row["ap"] is not None else f"AP {row['ap_protocol_c']}, protocol C"
        measured_here = row["builtin"] in names and sizes[names.index(row["builtin"])] == row["input_size"]
        if measured_here:  # the measured dot at the same place names it and says its AP
            result = analyze(load_builtin(row["builtin"]), row["input_size"], "retinanet")
            x, y = result.params / 1e6, result.macs / 1e9
        else:
            x, y = row["params_m"], row["macs_b"]
        labels = [text_of(a) for a in annotations if anchored_at(a, x, y)]
        assert len(labels) == 1, (name, labels)
        assert labels[0].startswith(name) and f"({ap})" in labels[0], labels[0]
    # SpineNet-49 has two published points: their labels say which input size each is.
    if sizes[0] != 640:
        assert any(text_of(a) == "SpineNet-49 @640 (AP 42.8)" for a in annotations)
    assert any(text_of(a) == "SpineNet-49 @896 (AP 45.3)" for a in annotations)
    assert any(text_of(a) == "SpineNet-190 (AP 52.1, protocol C)" for a in annotations)


def test_measured_labels_are_escaped_and_anchored_at_their_dots(home):
    spec = load_builtin("spinenet-49")
    odd = replace(spec, name="<i>x</i> & y")
    frame = comparison_rows([odd, load_builtin("resnet50-fpn")], [512, 512], "retinanet")
    figure = scatter_figure(frame, "retinanet")
    ours = analyze(odd, 512, "retinanet")
    [label] = [a for a in figure.layout.annotations if anchored_at(a, ours.params / 1e6, ours.macs / 1e9)]
    assert "&lt;i&gt;x&lt;/i&gt; &amp; y" in label.text and "<i>" not in label.text

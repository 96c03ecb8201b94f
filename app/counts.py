"""The numbers the app shows, computed by `analysis` and cached by (spec hash, name, input size, head).

Streamlit's cache_data hands every caller its own copy, so nothing cached is ever changed in place. The spec
itself is passed unhashed (`_spec`); its content hash (plus name) is the key.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from spinescope.analysis.counting import Analysis
from spinescope.analysis.counting.view import ModelView, model_view
from spinescope.spinenet.input_size import InputSize, normalize
from spinescope.spinenet.layout import resolve
from spinescope.spinenet.spec import Spec, spec_hash

HEAD_LABELS = {"retinanet": "RetinaNet head", "classification": "classification head (1000 classes, GAP)"}


def spec_key(spec: Spec) -> str:
    """Returns the cache key of a spec: its content hash plus its name."""
    return f"{spec_hash(spec)}:{spec.name}"


def view_of(spec: Spec, input_size: InputSize, head: str) -> ModelView:
    """Returns the one model view of `spec` with `head` at `input_size` that every part of a page reads (shared,
    read-only: `analysis.counting.view`)."""
    return model_view(spec, input_size, head)


@st.cache_data(max_entries=512, show_spinner=False)
def _analysis(key: str, _spec: Spec, input_size: InputSize, head: str) -> Analysis:
    return view_of(_spec, input_size, head).analysis


def analysis_of(spec: Spec, input_size: InputSize, head: str) -> Analysis:
    """Returns params and MACs of `spec` with `head` at `input_size` (a private copy of the view's analysis)."""
    return _analysis(spec_key(spec), spec, normalize(input_size), head)


def block_costs(spec: Spec, result: Analysis) -> dict[str, dict]:
    """Returns {node id: {params, macs, share, resample_params, resample_macs}}; share is of the backbone MACs."""
    total = max(result.backbone_macs, 1)
    costs = {}
    for block in result.blocks:
        costs[block.id] = {"params": block.params, "macs": block.macs, "share": block.macs / total,
                           "resample_params": getattr(block, "resample_params", None),
                           "resample_macs": getattr(block, "resample_macs", None)}
    return costs


def block_table(spec: Spec, result: Analysis) -> pd.DataFrame:
    """Returns one row per graph node: order, id, level, type, channels, feature size, params, MACs (and their
    resampling part where the counter gives it), share of the backbone MACs, output level and inputs."""
    layout = view_of(spec, result.input_size, result.head).layout
    costs = block_costs(spec, result)
    inputs: dict[str, list[str]] = {}
    for edge in layout.edges:
        inputs.setdefault(edge.target, []).append(edge.source + (" (merge)" if edge.kind == "merge" else ""))
    rows = []
    for node in layout.nodes:
        cost = costs.get(node.id, {})
        rows.append({
            "order": node.order, "id": node.id, "level": node.level, "type": node.block_fn,
            "in ch": node.in_channels, "out ch": node.out_channels, "size px (W×H)": f"{node.width}×{node.height}",
            "params": cost.get("params"), "MACs": cost.get("macs"),
            "resample MACs": cost.get("resample_macs"),
            "MACs %": round(100 * cost.get("share", 0.0), 2),
            "output": f"P{node.output_level}" if node.output_level is not None else "",
            "inputs": ", ".join(inputs.get(node.id, [])),
        })
    frame = pd.DataFrame(rows)
    if frame["resample MACs"].isna().all():
        frame = frame.drop(columns=["resample MACs"])
    return frame


def scale_profile(spec: Spec, input_size: InputSize) -> pd.DataFrame:
    """Returns the feature level of every node in build order (the scale profile)."""
    layout = resolve(spec, input_size)
    return pd.DataFrame({"order": [node.order for node in layout.nodes], "level": [node.level for node in layout.nodes],
                         "id": [node.id for node in layout.nodes]})


def receptive_field_table(spec: Spec, input_size: InputSize) -> pd.DataFrame | None:
    """Returns one row per output P3-P7: theoretical receptive field and effective stride (pixels), and the
    longest/shortest input path in weighted layers with its scale changes; None if the module is unavailable."""
    try:
        from spinescope.analysis.architecture.receptive_field import receptive_fields
    except ImportError:
        return None
    fields = receptive_fields(spec, input_size)
    rows = []
    for level, field in fields.outputs.items():
        rows.append({"output": level, "receptive field px": field.receptive_field, "stride px": field.stride,
                     "longest path (layers)": field.longest.layers,
                     "scale changes on it": field.longest.scale_changes,
                     "shortest path (layers)": field.shortest.layers})
    return pd.DataFrame(rows)


def output_receptive_fields(spec: Spec, input_size: InputSize) -> dict[str, int]:
    """Returns {"P3": pixels, ...} or {} if receptive fields are unavailable."""
    table = receptive_field_table(spec, input_size)
    return {} if table is None else dict(zip(table["output"], table["receptive field px"]))

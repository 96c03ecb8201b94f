"""The Model Garden fixtures of tests/modelgarden (written by benchmarks/make_model_garden_fixtures.py with
TensorFlow Model Garden itself): reading them, and our spec of each."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import read_tuples
from spinescope.spinenet.spec import Scaling

FIXTURES = Path(__file__).resolve().parent / "modelgarden" / "fixtures"
# Model Garden's current SpineNet list (tensorflow/models spinenet.py SPINENET_BLOCK_SPECS): 16 blocks.
MODEL_GARDEN_SPINENET_49 = (
    "[(2, 'bottleneck', (0, 1), False), (4, 'residual', (0, 1), False), (3, 'bottleneck', (2, 3), False), "
    "(4, 'bottleneck', (2, 4), False), (6, 'residual', (3, 5), False), (4, 'bottleneck', (3, 5), False), "
    "(5, 'residual', (6, 7), False), (7, 'residual', (6, 8), False), (5, 'bottleneck', (8, 9), False), "
    "(5, 'bottleneck', (8, 10), False), (4, 'bottleneck', (5, 10), True), (3, 'bottleneck', (4, 10), True), "
    "(5, 'bottleneck', (7, 12), True), (7, 'bottleneck', (5, 14), True), (6, 'bottleneck', (12, 14), True), "
    "(2, 'bottleneck', (2, 13), True)]")


def load_fixture(name: str) -> dict:
    """Returns {"config", "variables" {checkpoint key: array}, "inputs" {(h, w): NCHW}, "outputs" {(h, w): {"P3":
    NCHW, ..., and with a head "head": {"P3": (class logits, box deltas)}}}} of fixture `name`."""
    with np.load(FIXTURES / f"{name}.npz") as data:
        config = json.loads(str(data["config"]))
        keys = [str(key) for key in data["keys"]]
        variables = {key: data[f"var_{index}"] for index, key in enumerate(keys)}
        inputs, outputs = {}, {}
        for height, width in config["sizes"]:
            tag = f"{height}x{width}"
            inputs[(height, width)] = data[f"input_{tag}"]
            levels = range(config["min_level"], config["max_level"] + 1)
            outputs[(height, width)] = {f"P{level}": data[f"P{level}_{tag}"] for level in levels}
            if "head" in config:  # the RetinaNet head's (class logits, box deltas) per level, as our head returns
                outputs[(height, width)]["head"] = {f"P{level}": (data[f"scores{level}_{tag}"],
                                                                  data[f"boxes{level}_{tag}"]) for level in levels}
    return {"config": config, "variables": variables, "inputs": inputs, "outputs": outputs}


def fixture_spec(config: dict):
    """Returns our spec of a fixture's model (Model Garden semantics). Widths below the spec files' limit
    (filter_size_scale 0.125) are set directly, as a test may."""
    scaling = {"endpoints_num_filters": config["endpoints_num_filters"],
               "filter_size_scale": config["filter_size_scale"]}
    if config["family"] == "spinenet":
        base = replace(load_builtin("spinenet-49"), min_level=config["min_level"], max_level=config["max_level"])
        spec = read_tuples(MODEL_GARDEN_SPINENET_49, base, config["min_level"]).spec
        scaling["resample_alpha"] = config["resample_alpha"]
    else:
        spec = load_builtin("spinenet-mobile-49")
        spec = replace(spec, min_level=config["min_level"], max_level=config["max_level"])
    head = config.get("head") or {"width": config["endpoints_num_filters"]}
    head = replace(spec.head, **{key: value for key, value in head.items()
                                 if key in ("num_convs", "width", "num_classes", "num_anchors", "separable")})
    return replace(spec, semantics="model_garden", activation=config["activation"], head=head,
                   scaling=replace(spec.scaling, **scaling) if isinstance(spec.scaling, Scaling) else spec.scaling)

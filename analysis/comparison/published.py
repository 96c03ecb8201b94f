"""The paper's and the authors' zoo's published figures (assets/published.json), for display beside measurements."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from spinescope.spinenet.input_size import InputSize, hw

PUBLISHED_FILE = Path(__file__).resolve().parents[2] / "assets" / "published.json"


@lru_cache(maxsize=1)
def _published() -> dict:
    return json.loads(PUBLISHED_FILE.read_text())


def published_rows() -> tuple[dict, ...]:
    """Returns every published RetinaNet row: builtin, input_size, params_m (millions), macs_b (billions of
    multiply-adds), ap, source, and latencies where published."""
    return tuple(_published()["models"])


def classification_rows(task: str) -> tuple[dict, ...]:
    """Returns the published classification rows of `task` ('imagenet' or 'inaturalist'): model, input_size,
    params_m, macs_b (ImageNet only), top1 (where published), source, and either `builtin` (a SpineNet built-in) or
    `family` and `stages` (ResNet's own classifier, family 'resnet')."""
    return tuple(_published()[task])


def inaturalist_classes() -> int:
    """Returns the number of iNaturalist-2017 classes the published figures are for (5089)."""
    return _published()["inaturalist_classes"]


def published_for(builtin: str, input_size: InputSize | None = None) -> dict | None:
    """Returns the published row for a built-in at `input_size` (any size when None), or None."""
    for row in published_rows():
        if row["builtin"] == builtin and (input_size is None or hw(row["input_size"]) == hw(input_size)):
            return row
    return None

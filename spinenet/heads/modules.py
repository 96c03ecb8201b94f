"""The heads' modules (torch), each built from the Layer its head's `describe` adds, named as it. (RetinaNet's
register their forwards in `heads.retinanet` with `structure.forward_for`.)"""
from __future__ import annotations

from spinescope.spinenet.containers import DescribedModule, child
from spinescope.spinenet.heads.classification import merge_levels, pool_map
from spinescope.spinenet.structure import Layer


class ClassificationHead(DescribedModule):
    """The outputs merged to the finest one's size, pooled (`pool`, one layer per pyramid level), then the linear
    classifier `fc`. Returns logits [N, num_classes]."""

    kind = "classification_head"

    def __init__(self, layer: Layer):
        super().__init__()
        self.pool = child(layer, "pool")
        self.fc = child(layer, "fc")

    def forward(self, features):
        return self.fc(pool_map(self.pool, merge_levels(features)))

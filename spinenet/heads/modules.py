"""The heads' modules (torch), each built from the Layer its head's `describe` adds, named as it."""
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


class RetinaNetSubnet(DescribedModule):
    """One RetinaNet subnet (class or box): `convs` shared across levels, each followed by that level's own BN
    (`norms[level]`) and the activation `act`, then the 3x3 predictor `predict`. Returns the prediction map of the
    level it is given."""

    kind = "subnet"

    def __init__(self, layer: Layer):
        super().__init__()
        self.convs = child(layer, "convs")
        self.norms = child(layer, "norms")
        self.act = child(layer, "act")
        self.predict = child(layer, "predict")

    def forward(self, x, level: str):
        for conv, norm in zip(self.convs, self.norms[level]):
            x = self.act(norm(conv(x)))
        return self.predict(x)


class RetinaNetHead(DescribedModule):
    """The paper's RetinaNet head: `class_net` and `box_net` run on every output level. Returns
    {"P3": (class_logits, box_deltas), ...}."""

    kind = "retinanet_head"

    def __init__(self, layer: Layer):
        super().__init__()
        self.class_net = child(layer, "class_net")
        self.box_net = child(layer, "box_net")

    def forward(self, features):
        return {level: (self.class_net(x, level), self.box_net(x, level)) for level, x in features.items()}

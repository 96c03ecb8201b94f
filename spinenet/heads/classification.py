"""A classification head: the outputs resized (nearest) to the finest output's size and averaged, then global
average pooling ('gap') or spatial pyramid pooling over 1x1, 2x2 and 4x4 bins ('spp'), then a linear classifier.
Returns logits [N, num_classes]."""
from __future__ import annotations

from spinenet.registry import HeadType, register_head
from spinenet.spec import Spec
from spinenet.structure import Describer, Shape, forward_for

POOLINGS = {"gap": (1,), "spp": (1, 2, 4)}  # pooling -> the side of each pooling grid


def describe(d: Describer, spec: Spec, features: dict[str, Shape], num_classes: int = 1000,
             pooling: str = "gap") -> None:
    bins = POOLINGS[pooling]
    first = next(iter(features.values()))
    channels = first[0]
    with d.module("head", "classification_head"):
        with d.module("pool", "list"):
            pools = [d.add(str(index), "adaptive_avg_pool", bins=side) for index, side in enumerate(bins)]
        fc = d.add("fc", "linear", in_features=channels * sum(side * side for side in bins), out_features=num_classes)
        maps = [d.resize(x, first[1], first[2]) for x in features.values()]
        d.op("stack", maps, (len(maps), *first))
        x = d.op("mean", ((len(maps), *first),), first)
        pooled = [d.call(pool, x) for pool in pools]
        d.call(fc, (sum(p[0] * p[1] * p[2] for p in pooled), 1, 1))


@forward_for("classification_head")
def forward(self, features):
    import torch

    from spinenet.layers import resize_nearest

    maps = list(features.values())
    size = maps[0].shape[-2:]
    x = torch.stack([resize_nearest(m, size) for m in maps]).mean(0)
    return self.fc(torch.cat([pool(x).flatten(1) for pool in self.pool], dim=1))


register_head(HeadType("classification", "classification, 1000 classes", describe,
                       options={"num_classes": 1000, "pooling": "gap"}, choices={"pooling": tuple(POOLINGS)}))

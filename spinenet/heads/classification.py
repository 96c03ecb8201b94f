"""A classification head: the outputs resized (nearest) to the finest output's size and averaged, then a pooling,
then a linear classifier. Returns logits [N, num_classes].

Poolings (the `pooling` option; `:LEVELS` sets the pyramid, e.g. 'spp:6,3,2,1'):
- 'gap': global average pooling (C inputs to the classifier);
- 'spp': spatial pyramid pooling as SPPNet (He et al., 2014) defines it: each pyramid level n max-pools the map
  over an n x n grid of bins, the bins of all levels concatenated: C x sum(n^2) inputs at any input size. Levels
  default to SPPNet's classification pyramid 4,2,1 (6,3,2,1 is its detection pyramid). Bin edges: SPPNet's
  (window ceil(a/n), stride floor(a/n) on an a x a map) give exactly n covering bins only when a mod n <= 1, and
  there they are PyTorch's adaptive bins [floor(i a/n), ceil((i+1) a/n)); elsewhere (a mod n >= 2, or a map
  smaller than n, where SPPNet's stride is 0) SPPNet's windows would leave pixels out or make more than n bins,
  so the adaptive bins are used: `nn.AdaptiveMaxPool2d` in every case (see `sppnet_window`);
- 'spp_avg': the same pyramid with average-pooled bins (a later variant, not SPPNet).
"""
from __future__ import annotations

from spinescope.spinenet.registry import HeadType, register_head
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.structure import Describer, Shape

POOLINGS = ("gap", "spp", "spp_avg")
SPP_LEVELS = (4, 2, 1)  # SPPNet's classification pyramid; its detection pyramid is 6, 3, 2, 1
MAX_SPP_LEVELS, MAX_SPP_BINS = 8, 32  # at most 8 pyramid levels of at most 32 x 32 bins
_LEAF = {"gap": "adaptive_avg_pool", "spp": "adaptive_max_pool", "spp_avg": "adaptive_avg_pool"}


def parse_pooling(pooling: str) -> tuple[str, tuple[int, ...]]:
    """Returns (kind, levels) of a pooling option: 'gap' -> ('gap', (1,)); 'spp' -> ('spp', (4, 2, 1));
    'spp_avg:6,3,2,1' -> ('spp_avg', (6, 3, 2, 1)). Raises ValueError with one line for anything else."""
    if not isinstance(pooling, str):
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    kind, colon, levels_text = pooling.partition(":")
    if kind not in POOLINGS or (colon and kind == "gap"):
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)} (spp and spp_avg may add "
                         f":LEVELS, e.g. spp:6,3,2,1)")
    if kind == "gap":
        return kind, (1,)
    return kind, parse_levels(levels_text) if colon else SPP_LEVELS


def parse_levels(text: str) -> tuple[int, ...]:
    """Returns the pyramid levels of e.g. '4,2,1'; raises ValueError with one line (the text escaped)."""
    parts = text.split(",")
    if not 1 <= len(parts) <= MAX_SPP_LEVELS or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        raise ValueError(f"spp levels must be 1 to {MAX_SPP_LEVELS} comma-separated integers such as 4,2,1, got "
                         f"{ascii(text)}")
    levels = tuple(int(p) for p in parts)
    if not all(1 <= n <= MAX_SPP_BINS for n in levels) or len(set(levels)) != len(levels):
        raise ValueError(f"spp levels must be different integers from 1 to {MAX_SPP_BINS}, got {ascii(text)}")
    return levels


class PoolingChoices(tuple):
    """The pooling names, for the registry's check: also accepts 'spp:LEVELS' and 'spp_avg:LEVELS'."""

    def __contains__(self, value) -> bool:
        try:
            parse_pooling(value)
        except ValueError:
            return False
        return True


def sppnet_window(side: int, bins: int) -> tuple[int, int] | None:
    """Returns SPPNet's (window, stride) = (ceil(a/n), floor(a/n)) for an a x a map and n x n bins when they give
    exactly n bins covering the map (a >= n and a mod n <= 1; then they equal the adaptive bins used), else None."""
    if side < bins or side % bins > 1:
        return None
    return -(-side // bins), side // bins


def classifier_inputs(channels: int, pooling: str) -> int:
    """Returns the classifier's input length for `channels` pooled channels: C x sum(n^2), whatever the input size."""
    return channels * sum(n * n for n in parse_pooling(pooling)[1])


def describe(d: Describer, spec: Spec, features: dict[str, Shape], num_classes: int = 1000,
             pooling: str = "gap") -> None:
    kind, levels = parse_pooling(pooling)
    first = next(iter(features.values()))
    channels = first[0]
    with d.module("head", "classification_head"):
        with d.module("pool", "list"):
            pools = [d.add(str(index), _LEAF[kind], bins=n) for index, n in enumerate(levels)]
        fc = d.add("fc", "linear", in_features=classifier_inputs(channels, pooling), out_features=num_classes)
        maps = [d.resize(x, first[1], first[2]) for x in features.values()]
        d.op("stack", maps, (len(maps), *first))
        x = d.op("mean", ((len(maps), *first),), first)
        pooled = [d.call(pool, x) for pool in pools]
        d.call(fc, (sum(p[0] * p[1] * p[2] for p in pooled), 1, 1))


def merge_levels(features):
    """Returns the map the pooling reads: every output resized (nearest) to the first (finest) one's size and
    averaged, [N, C, H, W] (timm's `forward_features`)."""
    import torch

    from spinescope.spinenet.layers import resize_nearest

    maps = list(features.values())
    size = maps[0].shape[-2:]
    return torch.stack([resize_nearest(m, size) for m in maps]).mean(0)


def pool_map(pools, x):
    """Returns the classifier's input [N, C x sum(n^2)]: each pyramid level's bins flattened, concatenated."""
    import torch

    return torch.cat([pool(x).flatten(1) for pool in pools], dim=1)


register_head(HeadType("classification", "classification, 1000 classes", describe,
                       options={"num_classes": 1000, "pooling": "gap"}, choices={"pooling": PoolingChoices(POOLINGS)}))

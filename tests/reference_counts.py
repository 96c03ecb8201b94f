"""An independent count of params and MACs, written from docs/spinenet-facts.md alone.

It shares no code with `spinenet/` or `analysis/`: it walks the reference tuple lists with the document's formulas
(conv params k*k*Cin/g*Cout (+Cout bias), BN 2*C, conv MACs k*k*Cin/g*Cout*Hout*Wout), so a bug in the builders
or the counters cannot hide behind the same bug here.
"""
from __future__ import annotations

import math

SPINENET_49 = [
    (2, "bottleneck", (0, 1), False), (4, "residual", (0, 1), False), (3, "bottleneck", (2, 3), False),
    (4, "bottleneck", (2, 4), False), (6, "residual", (3, 5), False), (4, "bottleneck", (3, 5), False),
    (5, "residual", (6, 7), False), (7, "residual", (6, 8), False), (5, "bottleneck", (8, 9), False),
    (5, "bottleneck", (8, 10), False), (4, "bottleneck", (5, 10), True), (3, "bottleneck", (4, 10), True),
    (5, "bottleneck", (7, 12), True), (7, "bottleneck", (5, 14), True), (6, "bottleneck", (12, 14), True),
]
# The current TF2 Model Garden's list: SpineNet-49's 15 blocks and a 16th, a level-2 output (P2 with min_level 2;
# with min_level 3 it is built without an endpoint and feeds nothing). Section 11 of the reference page.
MODEL_GARDEN_49 = SPINENET_49 + [(2, "bottleneck", (2, 13), True)]
MOBILE_49 = [(2, "mbconv", (0, 1), False)] + [(lv, "mbconv", (a + 1, b + 1), out) for lv, _, (a, b), out in SPINENET_49]
FILTER = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}
MOBILE_FILTER = {0: 8, 1: 16, 2: 24, 3: 40, 4: 80, 5: 112, 6: 112, 7: 112}

# name: (endpoints, filter_size_scale, alpha, repeats, head convs, head width)
SPINENET_SCALING = {
    "spinenet-49s": (128, 0.65, 0.5, 1, 4, 128),
    "spinenet-49": (256, 1.0, 0.5, 1, 4, 256),
    "spinenet-96": (256, 1.0, 0.5, 2, 4, 256),
    "spinenet-143": (256, 1.0, 1.0, 3, 4, 256),
    "spinenet-190": (512, 1.3, 1.0, 4, 7, 512),
}
MOBILE_SCALING = {"spinenet-mobile-49": (48, 1.0), "spinenet-mobile-49s": (40, 0.65), "spinenet-mobile-49xs": (24, 0.6)}
RESNET_STAGES = {"resnet50-fpn": (3, 4, 6, 3), "resnet101-fpn": (3, 4, 23, 3), "resnet152-fpn": (3, 8, 36, 3)}


def side(size: int, level: int) -> int:
    return math.ceil(size / 2 ** level)


class Tally:
    def __init__(self):
        self.params = 0
        self.macs = 0

    def conv(self, cin, cout, k, out_side, groups=1, bias=False, bn=True):
        weights = k * k * (cin // groups) * cout
        self.params += weights + (cout if bias else 0) + (2 * cout if bn else 0)
        self.macs += weights * out_side * out_side

    def bn(self, channels):
        self.params += 2 * channels


def _bottleneck(t, cin, c, s_in, s_out):
    t.conv(cin, c, 1, s_in)
    t.conv(c, c, 3, s_out)
    t.conv(c, 4 * c, 1, s_out)
    if cin != 4 * c or s_in != s_out:
        t.conv(cin, 4 * c, 1, s_out)
    return 4 * c


def _residual(t, cin, c, s):
    t.conv(cin, c, 3, s)
    t.conv(c, c, 3, s)
    if cin != c:
        t.conv(cin, c, 1, s)
    return c


def _mbconv(t, cin, cout, s_in, s_out):
    expanded = 6 * cin
    t.conv(cin, expanded, 1, s_in)
    t.conv(expanded, expanded, 3, s_out, groups=expanded)
    reduced = max(1, int(cin * 0.2))
    t.conv(expanded, reduced, 1, 1, bias=True, bn=False)
    t.conv(reduced, expanded, 1, 1, bias=True, bn=False)
    t.conv(expanded, cout, 1, s_out)
    return cout


def _group(t, fn, cin, c, repeats, s):
    for _ in range(repeats):
        cin = _bottleneck(t, cin, c, s, s) if fn == "bottleneck" else _residual(t, cin, c, s)
    return cin


def _retinanet_head(t, levels, size, width, convs, separable=False):
    for outputs in (91 * 9, 4 * 9):
        for _ in range(convs):  # shared across levels: params once, MACs per level
            t.params += (9 * width + width * width + width) if separable else (9 * width * width + width)
        t.params += (9 * width + width * outputs + outputs) if separable else (9 * width * outputs + outputs)
        for level in levels:
            s2 = side(size, level) ** 2
            per_conv = (9 * width + width * width) if separable else 9 * width * width
            per_predict = (9 * width + width * outputs) if separable else 9 * width * outputs
            t.macs += (convs * per_conv + per_predict) * s2
            t.params += 2 * width * convs


def _merge_outdegree(feats, outdegree, target_side, target_channels):
    for j, (_, _, channels, s) in enumerate(feats):
        if outdegree[j] == 0 and s == target_side and channels == target_channels:
            outdegree[j] += 1


def spinenet_counts(name: str, size: int, head: bool, blocks=SPINENET_49, min_level: int = 3) -> tuple[int, int, int]:
    """Returns (params, macs, merges) of a SpineNet built-in (or `blocks`, a tuple list, with its scaling) with or
    without its RetinaNet head, outputs P<min_level>-P7. An output flag below min_level is dropped (the reference's
    rule); a block that nothing consumes and that is no output counts its params but 0 MACs (fvcore drops it)."""
    endpoints, scale, alpha, repeats, head_convs, head_width = SPINENET_SCALING[name]
    t = Tally()
    t.conv(3, 64, 7, side(size, 1))
    c2 = int(64 * scale)
    cin = 64
    for _ in range(2):
        cin = _group(t, "bottleneck", cin, c2, repeats, side(size, 2))
    feats = [(2, "bottleneck", 4 * c2, side(size, 2))] * 2
    outdegree = [0, 0]
    outputs, merges, block_macs, is_outputs = {}, 0, [], []
    for level, fn, (i0, i1), is_output in blocks:
        is_output = is_output and min_level <= level <= 7
        macs_before = t.macs
        s = side(size, level)
        c = int(FILTER[level] * scale)
        target_in = 4 * c if fn == "bottleneck" else c
        for i in (i0, i1):
            _, parent_fn, channels, parent_side = feats[i]
            reduced = int((channels / 4 if parent_fn == "bottleneck" else channels) * alpha)
            t.conv(channels, reduced, 1, parent_side)
            if parent_side > s:
                t.conv(reduced, reduced, 3, math.ceil(parent_side / 2))
            t.conv(reduced, target_in, 1, s)
            outdegree[i] += 1
        if is_output:
            before = sum(outdegree)
            _merge_outdegree(feats, outdegree, s, target_in)
            merges += sum(outdegree) - before
        out = _group(t, fn, target_in, c, repeats, s)
        feats.append((level, fn, out, s))
        outdegree.append(0)
        block_macs.append(t.macs - macs_before)
        is_outputs.append(is_output)
        if is_output:
            outputs[level] = (out, s)
    for index, (macs, is_output) in enumerate(zip(block_macs, is_outputs)):
        if outdegree[index + 2] == 0 and not is_output:  # dead code (no list here has a longer dead chain)
            t.macs -= macs
    for level in range(min_level, 8):
        t.conv(outputs[level][0], endpoints, 1, outputs[level][1])
    if head:
        _retinanet_head(t, range(min_level, 8), size, head_width, head_convs)
    return t.params, t.macs, merges


def mobile_counts(name: str, size: int, head: bool) -> tuple[int, int]:
    """Returns (params, macs) of a Mobile SpineNet built-in with or without its separable RetinaNet head."""
    endpoints, scale = MOBILE_SCALING[name]
    t = Tally()
    width = {level: int(f * scale) for level, f in MOBILE_FILTER.items()}
    t.conv(3, width[0], 3, side(size, 1))
    _mbconv(t, width[0], width[1], side(size, 1), side(size, 1))
    _mbconv(t, width[1], width[2], side(size, 1), side(size, 2))
    feats = [(1, width[1], side(size, 1)), (2, width[2], side(size, 2))]
    outdegree = [0, 0]
    outputs = {}
    for level, _, (i0, i1), is_output in MOBILE_49:
        s, c = side(size, level), width[level]
        for i in (i0, i1):
            _, channels, parent_side = feats[i]
            current, real = parent_side, float(parent_side)
            while real > s:
                current, real = math.ceil(current / 2), real / 2
                t.conv(channels, channels, 3, current, groups=channels)
            t.conv(channels, c, 1, s)
            outdegree[i] += 1
        _mbconv(t, c, c, s, s)
        feats.append((level, c, s))
        outdegree.append(0)
        if is_output:
            outputs[level] = (c, s)
    for level in range(3, 8):
        t.conv(outputs[level][0], endpoints, 1, outputs[level][1])
    if head:
        _retinanet_head(t, range(3, 8), size, endpoints, 4, separable=True)
    return t.params, t.macs


def resnet_fpn_counts(name: str, size: int, head: bool) -> tuple[int, int, int]:
    """Returns (params, macs, resnet_params_without_fpn) of a ResNet-FPN built-in."""
    t = Tally()
    t.conv(3, 64, 7, side(size, 1))
    cin = 64
    stage_out = {}
    for stage, (count, width) in enumerate(zip(RESNET_STAGES[name], (64, 128, 256, 512))):
        level = stage + 2
        for index in range(count):
            s_in = side(size, level - 1) if index == 0 and level > 2 else side(size, level)
            cin = _bottleneck(t, cin, width, s_in, side(size, level))
        stage_out[level] = cin
    resnet_params = t.params
    for level in (3, 4, 5):
        t.conv(stage_out[level], 256, 1, side(size, level), bias=True, bn=False)
        t.conv(256, 256, 3, side(size, level), bias=True, bn=False)
    for level in (6, 7):
        t.conv(256, 256, 3, side(size, level), bias=True, bn=False)
    for level in range(3, 8):
        t.bn(256)
    if head:
        _retinanet_head(t, range(3, 8), size, 256, 4)
    return t.params, t.macs, resnet_params


def reference_counts(name: str, size: int, head: bool) -> tuple[int, int]:
    """Returns (params, macs) for any built-in name."""
    if name in SPINENET_SCALING:
        return spinenet_counts(name, size, head)[:2]
    if name in MOBILE_SCALING:
        return mobile_counts(name, size, head)
    return resnet_fpn_counts(name, size, head)[:2]

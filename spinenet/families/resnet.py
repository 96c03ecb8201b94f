"""ResNet-50/101/152 as a classification trunk (torchvision's resnet without its avgpool and fc): the stem and the
four bottleneck stages of ResNet-FPN, no FPN. Its one output is C5 (2048 channels at level 5), exposed as the
level-5 output "P5" like every family's outputs (an identity endpoint), so that any head reads it. With the
classification head's 'gap' pooling it is ResNet's own classifier: global average pooling of C5 and one linear
layer (torchvision: 25,557,032 / 44,549,160 / 60,192,808 params with 1000 classes)."""
from __future__ import annotations

from dataclasses import replace

from spinescope.spinenet.blocks import BLOCK_TYPES
from spinescope.spinenet.families import resnet_fpn
from spinescope.spinenet.input_size import InputSize
from spinescope.spinenet.layout import Layout
from spinescope.spinenet.registry import register_family
from spinescope.spinenet.spec import Scaling, Spec
from spinescope.spinenet.structure import Describer, Shape

OUTPUT_LEVEL = 5
C5_CHANNELS = BLOCK_TYPES["bottleneck"].out_channels(resnet_fpn.STAGE_WIDTHS[-1])  # 2048


class Resnet(resnet_fpn.ResnetFpn):
    """ResNet's classification trunk: the stem and stages of ResNet-FPN (their widths), C5 as its one output "P5"."""

    name = "resnet"
    title = "ResNet (classification trunk)"
    fields = frozenset({"stages"})
    default_input_size = 224

    def to_dict(self, spec: Spec) -> dict:
        return {"stages": list(spec.stages)}

    def from_dict(self, data: dict, common: dict) -> Spec:
        return Spec(**common, stages=tuple(data["stages"]), scaling=Scaling(endpoints_num_filters=C5_CHANNELS))

    def check(self, problems: list[str], data: dict, min_level, max_level, levels_ok: bool) -> int | None:
        """Four stage block counts; its one output level is 5 (C5)."""
        if levels_ok and (min_level, max_level) != (OUTPUT_LEVEL, OUTPUT_LEVEL):
            problems.append("min_level/max_level: resnet outputs C5 only (min_level 5, max_level 5)")
        resnet_fpn.check_stages(problems, data.get("stages"))
        return C5_CHANNELS

    def resolve(self, spec: Spec, input_size: InputSize) -> Layout:
        """The stem and the stages' blocks of ResNet-FPN (same ids), the last block feeding output level 5."""
        full = super().resolve(spec, input_size)
        trunk = [node for node in full.nodes if node.role != "fpn"]
        ids = {node.id for node in trunk}
        trunk[-1] = replace(trunk[-1], output_level=OUTPUT_LEVEL)
        return Layout(spec, input_size, trunk, [edge for edge in full.edges if edge.target in ids])

    def describe(self, d: Describer, layout: Layout) -> dict[str, Shape]:
        """Adds "backbone": blocks[stem] and blocks[c<level>_<i>] as in ResNet-FPN, and endpoints[P5] (identity);
        returns {"P5": C5's shape}."""
        spec = layout.spec
        stage_ids = {}
        with d.module("backbone", "resnet", stage_ids=stage_ids):
            with d.module("blocks", "dict"):
                x = resnet_fpn.describe_trunk(d, spec, layout.input_size, stage_ids)[5]
            with d.module("endpoints", "dict"):
                x = d.call(d.add(f"P{OUTPUT_LEVEL}", "identity"), x)
        return {f"P{OUTPUT_LEVEL}": x}


register_family(Resnet())

"""What 1x1 convolutions save: the seeds' two worked examples (reference page, section 13), described as layers and
counted with the counter every model uses, so the numbers shown are the tool's own, not typed in.

- Inception 3a on a 28 x 28 x 192 input: 1x1 64, 3x3 128 and 5x5 32 convolutions straight from the input, against
  the same outputs with 1x1 reductions to 96 channels before the 3x3 and 16 before the 5x5 (weights).
- A 256-channel map: one 3x3 convolution 256 -> 256, against the bottleneck 1x1 256 -> 64, 3x3 64 -> 64,
  1x1 64 -> 256 (multiply-adds per output pixel, counted on a 1 x 1 map).
"""
from __future__ import annotations

from dataclasses import dataclass

from spinescope.analysis.counting.fast import count_layers
from spinescope.spinenet.describe import describe_block_group
from spinescope.spinenet.structure import Describer, Layer


@dataclass(frozen=True)
class Saving:
    """One worked example: `without` and `with_reductions` in `unit` (weights, or MACs per output pixel)."""

    name: str
    unit: str
    without: int
    with_reductions: int

    @property
    def ratio(self) -> float:
        """How many times fewer with the 1x1 reductions."""
        return self.without / self.with_reductions

    def to_dict(self) -> dict:
        return {"name": self.name, "unit": self.unit, "without": self.without,
                "with_reductions": self.with_reductions, "ratio": self.ratio}


def _convs(branches: list[list[tuple[int, int, int]]], channels: int, side: int) -> Layer:
    """Branches of plain convs (in, out, kernel) side by side on a channels x side x side input."""
    d = Describer("inception")
    for index, branch in enumerate(branches):
        with d.module(str(index), "sequential"):
            x = (channels, side, side)
            for step, (in_channels, out_channels, kernel) in enumerate(branch):
                x = d.conv(str(step), in_channels, out_channels, kernel, x)
    return d.root


def _weights(root: Layer) -> int:
    counts = count_layers(root)
    return sum(counts.params[layer.name] for layer in root.walk() if layer.kind == "conv")


def inception_3a() -> Saving:
    """Returns Inception 3a's conv weights without and with its 1x1 reductions (28 x 28 x 192 input)."""
    direct = _convs([[(192, 64, 1)], [(192, 128, 3)], [(192, 32, 5)]], 192, 28)
    reduced = _convs([[(192, 64, 1)], [(192, 96, 1), (96, 128, 3)], [(192, 16, 1), (16, 32, 5)]], 192, 28)
    return Saving("Inception 3a (28x28x192 input)", "weights", _weights(direct), _weights(reduced))


def bottleneck_vs_3x3(channels: int = 256, reduced: int = 64) -> Saving:
    """Returns the MACs per output pixel of one 3x3 conv channels -> channels and of the bottleneck block (1x1 to
    `reduced`, 3x3, 1x1 back), both counted on a 1 x 1 map (the bottleneck's own block type, as models build it)."""
    plain = count_layers(_convs([[(channels, channels, 3)]], channels, 1)).macs("")
    bottleneck = count_layers(describe_block_group("bottleneck", channels, reduced, 1)).macs("")
    return Saving(f"3x3 conv vs bottleneck ({channels} channels)", "MACs per output pixel", plain, bottleneck)


def worked_examples() -> list[Saving]:
    """Returns both worked examples of section 13 as the tool counts them."""
    return [inception_3a(), bottleneck_vs_3x3()]

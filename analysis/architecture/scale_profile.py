"""Scale profile: the feature level of every block in build order, the picture that tells a scale-permuted
backbone (levels jump up and down) from a scale-decreased one (levels only ever get coarser)."""
from __future__ import annotations

from dataclasses import dataclass

from spinescope.spinenet.layout import resolve
from spinescope.spinenet.spec import Spec


@dataclass(frozen=True)
class ScalePoint:
    """One graph node: build order, id, feature level (stride 2**level), role (stem, block, fpn), block type and
    output level (None if not an output)."""

    order: int
    id: str
    level: int
    role: str
    block_fn: str
    output_level: int | None


@dataclass(frozen=True)
class ScaleProfile:
    """`points` in build order. Over the backbone's trunk (stem and blocks, not the FPN): `level_changes` counts
    consecutive blocks at different levels, `finer_steps` those that go to a finer level (a lower level number),
    `reversals` the changes of direction; `kind` is "scale-decreased" when no step goes finer, else
    "scale-permuted"."""

    points: tuple[ScalePoint, ...]
    level_changes: int
    finer_steps: int
    reversals: int
    kind: str

    def to_dict(self) -> dict:
        return {"points": [point.__dict__ for point in self.points], "level_changes": self.level_changes,
                "finer_steps": self.finer_steps, "reversals": self.reversals, "kind": self.kind}


def scale_profile(spec: Spec) -> ScaleProfile:
    """Returns the scale profile of `spec` (levels do not depend on the input size)."""
    layout = resolve(spec, spec.input_size)
    points = tuple(ScalePoint(node.order, node.id, node.level, node.role, node.block_fn, node.output_level)
                   for node in layout.nodes)
    trunk = [point.level for point in points if point.role != "fpn"]
    steps = [after - before for before, after in zip(trunk, trunk[1:]) if after != before]
    reversals = sum(1 for first, second in zip(steps, steps[1:]) if (first > 0) != (second > 0))
    finer = sum(1 for step in steps if step < 0)
    return ScaleProfile(points, len(steps), finer, reversals, "scale-permuted" if finer else "scale-decreased")

"""The search space as plain data, the cheap metrics of a candidate, and reproducible sampling of valid specs.

A candidate is an ordinary SpineNet `Spec` built from the seed's blocks (`analysis.search.seed`): the intermediate
blocks first, then the output blocks, the positions of the running list [stem0, stem1, b2, b3, ...]. The moves:

- permute: the order of the intermediate blocks and, apart, the order of the output blocks ((N-5)! 5! orders);
- parents: each block takes two different parents among the blocks before it or the stem (off: each position
  keeps the seed's parent positions);
- levels: each intermediate block moves its level by -1, 0, +1 or +2 from the seed's, within L2-L7 (output blocks
  keep their level: one per output level);
- types: each block is a bottleneck or a residual block.

Constraints are checked on the metrics counted by the fast counter (milliseconds per spec, no torch): a MACs range
and a params range (backbone + the RetinaNet head at the space's input size, batch 1; MACs = multiply-adds, the
paper's "FLOPs"), the estimated peak memory of a training step at a batch (fp32, SGD), and, unless allowed, no dead
block (a block whose output reaches no output level).
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, lru_cache

from spinescope.analysis.search.costs import live_blocks
from spinescope.spinenet.input_size import InputSize
from spinescope.analysis.search.seed import SEED_RESNET50, Slot, Template, block_id, resnet50_seed, template_of
from spinescope.spinenet.spec import Block, Spec, spec_from_dict, spec_hash, spec_to_dict

MOVES = ("permute", "parents", "levels", "types")
LEVEL_DELTAS = (-1, 0, 1, 2)
BLOCK_LEVELS = (2, 7)  # an intermediate block's level stays within L2 (the stem's) and L7
BLOCK_FNS = ("bottleneck", "residual")
DEFAULT_ATTEMPTS = 500


class SpaceError(ValueError):
    """A space that cannot be built or sampled (bad seed, impossible constraints); str() is one line."""


@dataclass(frozen=True)
class Constraints:
    """Bounds a candidate must meet; None is no bound. MACs and params: backbone + head at the space's input size,
    batch 1. memory_max_bytes: the estimated peak of one fp32 SGD training step at `memory_batch` images."""

    macs_min: float | None = None
    macs_max: float | None = None
    params_min: float | None = None
    params_max: float | None = None
    memory_max_bytes: float | None = None
    memory_batch: int = 8
    allow_dead: bool = False

    def describe(self) -> list[str]:
        """Returns one line per active constraint, units labelled."""
        lines = []
        for what, low, high, scale, unit in (("MACs", self.macs_min, self.macs_max, 1e9, "G"),
                                             ("params", self.params_min, self.params_max, 1e6, "M")):
            if low is not None or high is not None:
                lines.append(f"{what} in [{_num(low, scale)}, {_num(high, scale)}] {unit}{what if what == 'MACs' else ''}")
        if self.memory_max_bytes is not None:
            lines.append(f"training memory <= {self.memory_max_bytes / 2 ** 30:.2f} GiB at batch {self.memory_batch}")
        lines.append("dead blocks allowed" if self.allow_dead else "no dead block (every block reaches an output)")
        return lines


def _num(value, scale) -> str:
    return "-" if value is None else f"{value / scale:g}"


@dataclass(frozen=True)
class Space:
    """A search space: the seed (its name as given and its spec), the moves on, the input size (pixels) and head
    the metrics are counted with, and the constraints."""

    seed_name: str
    seed: Spec
    moves: tuple[str, ...] = MOVES
    input_size: int = 640
    head: str = "retinanet"
    constraints: Constraints = field(default_factory=Constraints)

    @cached_property
    def template(self) -> Template:
        return template_of(self.seed)

    def to_dict(self) -> dict:
        """Returns the space as JSON-ready data (stored with a run)."""
        return {"seed_name": self.seed_name, "seed": spec_to_dict(self.seed), "moves": list(self.moves),
                "input_size": self.input_size, "head": self.head, "constraints": asdict(self.constraints)}

    def describe(self) -> list[str]:
        """Returns a few lines saying what the space is: seed, block counts, moves, size of the order space."""
        t = self.template
        inter, outs = len(t.intermediate), len(t.outputs)
        levels = {}
        for slot in t.intermediate + t.outputs:
            levels[slot.level] = levels.get(slot.level, 0) + 1
        lines = [f"seed: {self.seed_name} ({len(self.seed.blocks)} scale-permuted blocks: {inter} intermediate, "
                 f"{outs} output; per level " + ", ".join(f"L{k}: {v}" for k, v in sorted(levels.items())) + ")",
                 f"moves: {', '.join(self.moves) or 'none'}",
                 f"counted at {self.input_size} x {self.input_size} with head '{self.head}', batch 1"]
        if "permute" in self.moves:
            lines.append(f"block orders: {inter}! x {outs}! = {math.factorial(inter) * math.factorial(outs):.3g} "
                         "(with repeated levels, fewer distinct)")
        return lines + self.constraints.describe()


def space_from_dict(data: dict) -> Space:
    """Returns the Space stored by `Space.to_dict`."""
    return Space(data["seed_name"], spec_from_dict(data["seed"]), tuple(data["moves"]), data["input_size"],
                 data["head"], Constraints(**data["constraints"]))


def make_space(seed: str = SEED_RESNET50, moves=MOVES, input_size: int | None = None, head: str = "retinanet",
               constraints: Constraints | None = None, seed_spec: Spec | None = None) -> Space:
    """Returns a Space seeded by 'resnet50' (`analysis.search.seed`) or by `seed_spec` (any SpineNet spec, named
    `seed`). Raises SpaceError (one line) for an unknown move or a seed the space cannot use."""
    from spinescope.spinenet.builtins import load_builtin

    unknown = [move for move in moves if move not in MOVES]
    if unknown:
        raise SpaceError(f"unknown move {ascii(unknown[0])}; use {', '.join(MOVES)}")
    if seed_spec is None:
        if seed != SEED_RESNET50:
            raise SpaceError(f"unknown seed {ascii(seed)}; give {SEED_RESNET50!r} or a SpineNet spec")
        seed_spec = resnet50_seed(load_builtin("spinenet-49"))
    if seed_spec.family != "spinenet":
        raise SpaceError(f"seed {ascii(seed)} is a {seed_spec.family} spec; the space needs a SpineNet block list "
                         "(family spinenet: bottleneck and residual blocks)")
    levels = [b.level for b in seed_spec.blocks if b.is_output]
    if sorted(levels) != list(range(seed_spec.min_level, seed_spec.max_level + 1)):
        raise SpaceError(f"seed {ascii(seed)} needs exactly one output block per level P{seed_spec.min_level}-"
                         f"P{seed_spec.max_level}")
    size = input_size or seed_spec.input_size
    seed_spec = replace(seed_spec, input_size=size)
    return Space(seed, seed_spec, tuple(m for m in MOVES if m in moves), size, head, constraints or Constraints())


def build_candidate(space: Space, slots: list[Slot], parents: list[tuple[int, int]]) -> Spec:
    """Returns the Spec of a candidate: `slots` (intermediate then output, as many as the template's) at positions
    2, 3, ... with `parents` (positions), named 'candidate-' + its hash."""
    outputs = len(space.template.outputs)
    blocks = tuple(Block(block_id(p + 2), slot.level, slot.block_fn, (block_id(a), block_id(b)),
                         p >= len(slots) - outputs)
                   for p, (slot, (a, b)) in enumerate(zip(slots, parents)))
    spec = replace(space.seed, name="candidate", blocks=blocks)
    return replace(spec, name=f"candidate-{spec_hash(spec)[:10]}")


def slots_of(spec: Spec) -> list[Slot]:
    """Returns the blocks of a candidate as Slots, in order."""
    return [Slot(b.level, b.block_fn) for b in spec.blocks]


def parents_of(spec: Spec) -> list[tuple[int, int]]:
    """Returns the parent positions of every block of a candidate."""
    position = {block_id(i): i for i in range(len(spec.blocks) + 2)}
    return [(position[a], position[b]) for a, b in (block.parents for block in spec.blocks)]


def draw(space: Space, rng: random.Random) -> Spec:
    """Returns one candidate drawn from the space with `rng`, before any constraint is checked."""
    t = space.template
    inter, outs = list(t.intermediate), list(t.outputs)
    if "permute" in space.moves:
        rng.shuffle(inter)
        rng.shuffle(outs)
    if "levels" in space.moves:
        low, high = BLOCK_LEVELS
        inter = [Slot(rng.choice([s.level + d for d in LEVEL_DELTAS if low <= s.level + d <= high]), s.block_fn)
                 for s in inter]
    slots = inter + outs
    if "types" in space.moves:
        slots = [Slot(s.level, rng.choice(BLOCK_FNS)) for s in slots]
    if "parents" in space.moves:
        parents = [tuple(rng.sample(range(p + 2), 2)) for p in range(len(slots))]
    else:
        parents = list(t.parents)
    return build_candidate(space, slots, parents)


def candidate_metrics(spec: Spec, space: Space, memory: bool | None = None, receptive: bool = True) -> dict:
    """Returns the candidate's cheap metrics: macs (multiply-adds) and params of backbone + head at the space's
    input size (batch 1), dead (blocks that reach no output), with `receptive` rf_P3..rf_P7 (theoretical receptive
    field of each output, pixels), and, when `memory` (default: when the constraints bound it), memory_bytes
    (estimated peak of one fp32 SGD training step at the constraints' batch). Torch-free: the backbone's params
    and MACs are the fast counter's, summed from its remembered parts (`analysis.search.costs`, a fraction of a
    millisecond once the parts were seen); the head's are the same for every candidate of a space (it reads
    endpoints of fixed width and size), counted once per space. Receptive fields and memory describe the model
    (milliseconds)."""
    from spinescope.analysis.search.costs import cost_cache

    params, macs = cost_cache(spec, space.input_size).count(spec)
    head_macs, head_params = head_cost(space)
    metrics = {"macs": macs + head_macs, "params": params + head_params,
               "dead": dead_blocks(spec, space.input_size)}
    if receptive:
        from spinescope.analysis.architecture.receptive_field import output_receptive_fields

        for level, rf in output_receptive_fields(spec, space.input_size).items():
            metrics[f"rf_{level}"] = rf
    if memory or (memory is None and space.constraints.memory_max_bytes is not None):
        from spinescope.analysis.memory.estimate import estimate_training_memory

        metrics["memory_bytes"] = estimate_training_memory(spec, space.input_size, space.head,
                                                           space.constraints.memory_batch).peak_bytes
    return metrics


@lru_cache(maxsize=64)
def dead_blocks(spec: Spec, input_size: InputSize) -> int:
    """Returns how many blocks reach no output level (checked before anything is counted)."""
    live = live_blocks(spec, input_size)
    return sum(1 for b in spec.blocks if b.id not in live)


_HEAD_COSTS: dict = {}


def head_cost(space: Space) -> tuple[int, int]:
    """Returns (MACs, params) of the space's head on the seed's endpoints at the space's input size (0, 0 without
    a head)."""
    from spinescope.analysis.counting.fast import count_model

    key = (space.seed.scaling, space.seed.head, space.seed.min_level, space.seed.max_level, space.input_size,
           space.head)
    if key not in _HEAD_COSTS:
        counts = count_model(space.seed, space.input_size, space.head)
        _HEAD_COSTS[key] = (counts.macs("head"), counts.params.get("head", 0))
    return _HEAD_COSTS[key]


def violations(metrics: dict, constraints: Constraints) -> list[str]:
    """Returns one line per constraint the metrics break; [] when the candidate is admissible."""
    problems = []
    for key, low, high in (("macs", constraints.macs_min, constraints.macs_max),
                           ("params", constraints.params_min, constraints.params_max)):
        if low is not None and metrics[key] < low:
            problems.append(f"{key} {metrics[key]:,} < {low:,.0f}")
        if high is not None and metrics[key] > high:
            problems.append(f"{key} {metrics[key]:,} > {high:,.0f}")
    if constraints.memory_max_bytes is not None and metrics["memory_bytes"] > constraints.memory_max_bytes:
        problems.append(f"memory {metrics['memory_bytes']:,} B > {constraints.memory_max_bytes:,.0f} B")
    if not constraints.allow_dead and metrics["dead"]:
        problems.append(f"{metrics['dead']} dead block(s)")
    return problems


def admit(spec: Spec, space: Space, receptive: bool = True) -> dict | None:
    """Returns the metrics of `spec` when it is valid (`spinenet.validate.check_spec`) and meets the constraints,
    else None."""
    from spinescope.spinenet.validate import SpecError, check_spec

    try:
        check_spec(spec)
    except SpecError:
        return None
    if not space.constraints.allow_dead and dead_blocks(spec, space.input_size):
        return None
    metrics = candidate_metrics(spec, space, receptive=receptive)
    return None if violations(metrics, space.constraints) else metrics


def sample(space: Space, rng: random.Random, attempts: int = DEFAULT_ATTEMPTS,
           receptive: bool = True) -> tuple[Spec, dict, int]:
    """Returns (spec, metrics, draws) for the first draw that is valid and meets the constraints (metrics as
    `candidate_metrics`, receptive fields when `receptive`); raises SpaceError (one line) when `attempts` draws all
    fail."""
    for tries in range(1, attempts + 1):
        spec = draw(space, rng)
        metrics = admit(spec, space, receptive)
        if metrics is not None:
            return spec, metrics, tries
    raise SpaceError(f"no candidate met the constraints in {attempts} draws ({'; '.join(space.constraints.describe())}"
                     "); widen them or turn more moves on")


def sample_rng(seed: int, index: int, stream: str = "sample") -> random.Random:
    """Returns the random generator of draw `index` of a run seeded `seed`: each index has its own stream, so a
    sample (or a search step) does not depend on how many came before it or in which process it is drawn."""
    return random.Random(f"{stream}/{seed}/{index}")


def sample_many(space: Space, count: int, seed: int = 0, attempts: int = DEFAULT_ATTEMPTS,
                receptive: bool = True, progress=None) -> tuple[list[tuple[Spec, dict]], int]:
    """Returns ([(spec, metrics)] for `count` valid samples, total draws): sample i uses `sample_rng(seed, i)`, so
    the same seed gives the same specs; `progress(done, count)` is called after each. Raises SpaceError when a sample
    finds no admissible draw."""
    out, draws = [], 0
    for index in range(count):
        spec, metrics, tries = sample(space, sample_rng(seed, index), attempts, receptive)
        out.append((spec, metrics))
        draws += tries
        if progress is not None:
            progress(index + 1, count)
    return out, draws

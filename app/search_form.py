"""The Search tab's form: its widgets' defaults and bounds, the values kept in the workspace, and the space and
search settings read from it (the CLI's `spinescope space` / `spinescope search` options and defaults). Every bad
value raises FormError, one line naming it (escaped); every request is sized before it starts (the app is a shared
server)."""
from __future__ import annotations

import re
from pathlib import Path

from spinescope.analysis.search import Constraints, SearchConfig, Space, TrainSettings, make_space
from spinescope.analysis.search.engine import ALGORITHMS, OBJECTIVES
from spinescope.analysis.search.space import MOVES

MAX_TEXT = 300
MAX_SAMPLES = 1000  # "Sample the space": 20-40 ms each with receptive fields, in the page's own run
MAX_BUDGET = {"cost": 2000, "proxy-ap": 64}  # candidates per run: milliseconds each for cost, a training each for AP
MAX_STEPS = 200  # proxy-ap training steps per candidate
MAX_POPULATION = 256
MAX_SEED = 2 ** 31 - 1
SEEDS = {"resnet50": "ResNet-50's blocks", "current": "the open spec (a SpineNet)"}
OBJECTIVE_LABELS = {"cost": "cost (P3 receptive field)", "proxy-ap": "proxy AP (short training)"}
RANGE = re.compile(r"\A\s*([0-9.eE+-]*)\s*:\s*([0-9.eE+-]*)\s*\Z")
# widget key -> default (as `spinescope search` has them; samples: fewer than `spinescope space`'s 1000, for a
# shared server)
DEFAULTS = {"search_seed_from": "resnet50", "search_moves": list(MOVES), "search_gmacs": "", "search_mparams": "",
            "search_algorithm": "evolution", "search_objective": "cost", "search_dataset": "", "search_steps": 30,
            "search_budget": 32, "search_population": 8, "search_seed": 0, "search_samples": 200}
INTEGERS = {"search_steps": (1, 1_000_000), "search_budget": (1, 100_000), "search_population": (2, 100_000),
            "search_seed": (0, MAX_SEED), "search_samples": (1, 100_000)}
CHOICES = {"search_seed_from": SEEDS, "search_algorithm": ALGORITHMS, "search_objective": OBJECTIVES}


class FormError(ValueError):
    """A form value that cannot be used; str() is one line naming it."""


def valid(key: str, value):
    """Returns a value kept in the workspace that the widget `key` can show, or None (a wrong type, an option that
    no longer exists, a text over MAX_TEXT)."""
    if key == "search_moves":
        return [move for move in MOVES if move in value] if isinstance(value, list) else None
    if key in CHOICES:
        return value if value in CHOICES[key] else None
    if key in INTEGERS:
        low, high = INTEGERS[key]
        return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else None
    return value if isinstance(value, str) and len(value) <= MAX_TEXT else None


def parse_range(what: str, text: str, scale: float) -> tuple[float | None, float | None]:
    """Returns (low, high) in base units from 'LOW:HIGH' in units of `scale` (either side may be empty; an empty
    text is no bound), as the CLI's --gmacs / --mparams read it."""
    if not text.strip():
        return None, None
    match = RANGE.match(text)
    if not match or not (match.group(1) or match.group(2)):
        raise FormError(f"{what} {ascii(text[:40])} must be LOW:HIGH, LOW: or :HIGH (e.g. 80:100)")
    values = []
    for part in match.groups():
        try:
            value = float(part) * scale if part else None
        except ValueError:
            raise FormError(f"{what} {ascii(part[:40])} is not a number") from None
        if value is not None and not (0 <= value < float("inf")):
            raise FormError(f"{what} {ascii(part[:40])} must be a finite number >= 0")
        values.append(value)
    if None not in values and values[0] > values[1]:
        raise FormError(f"{what} {ascii(text[:40])}: LOW is above HIGH")
    return values[0], values[1]


def bounded(what: str, value, low: int, high: int, why: str = "") -> int:
    """Returns `value` as an int when it is within [low, high]; raises FormError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or not low <= value <= high:
        raise FormError(f"{what} {value!r:.40} is out of range [{low:,}, {high:,}]{why}")
    return int(value)


def space_from(state, current_spec, current_name: str) -> Space:
    """Returns the space the form describes: the seed (ResNet-50's blocks, or the open spec when it is a SpineNet),
    the moves on, the MACs (billions) and params (millions) ranges; counted with the RetinaNet head at the seed's
    input size."""
    from spinescope.analysis.search import SpaceError

    macs = parse_range("MACs range", state.search_gmacs, 1e9)
    params = parse_range("params range", state.search_mparams, 1e6)
    constraints = Constraints(macs[0], macs[1], params[0], params[1])
    moves = tuple(state.search_moves)
    try:
        if state.search_seed_from == "current":
            if current_spec.family != "spinenet":
                raise FormError(f"the open spec {ascii(current_name[:60])} is not a SpineNet block list; seed the "
                                "space with ResNet-50's blocks, or open a SpineNet")
            return make_space(current_name[:80], moves, None, "retinanet", constraints, seed_spec=current_spec)
        return make_space("resnet50", moves, None, "retinanet", constraints)
    except SpaceError as error:
        raise FormError(str(error)) from None


def sample_count(state) -> int:
    """Returns the number of samples asked for, within MAX_SAMPLES."""
    return bounded("samples", state.search_samples, 1, MAX_SAMPLES, " on this shared server (more with `spinescope "
                   "space --samples N`)")


def dataset_folder(text: str) -> str:
    """Returns the absolute path of a COCO-format dataset folder (train and val splits readable, as
    `spinescope make-dataset` writes them); raises FormError naming the folder otherwise."""
    from spinescope.analysis.training.dataset import DatasetError, load_split

    if not text.strip():
        raise FormError("proxy AP needs a dataset folder: a COCO-format directory (make one with `spinescope "
                        "make-dataset DIR`)")
    path = Path(text.strip()).expanduser()
    if not path.is_dir():
        raise FormError(f"dataset folder {ascii(text.strip()[:80])} does not exist or is not a folder (make one with "
                        "`spinescope make-dataset DIR`)")
    try:
        for split in ("train", "val"):
            load_split(path, split)
    except DatasetError as error:
        raise FormError(f"dataset folder {ascii(text.strip()[:80])} is not a COCO set: {error}") from None
    return str(path.resolve())


def config_from(state, space: Space) -> SearchConfig:
    """Returns the search settings of the form (checked and sized: budget, population, training steps)."""
    objective = state.search_objective
    budget = bounded("budget", state.search_budget, 1, MAX_BUDGET[objective],
                     f" for the {objective} objective on this shared server (more with `spinescope search`)")
    population = bounded("population", state.search_population, 2, MAX_POPULATION)
    seed = bounded("seed", state.search_seed, 0, MAX_SEED)
    if state.search_algorithm == "evolution" and not space.moves:
        raise FormError("evolution needs at least one move on")
    train = TrainSettings()
    if objective == "proxy-ap":
        steps = bounded("training steps", state.search_steps, 1, MAX_STEPS, " per candidate on this shared server")
        train = TrainSettings(dataset=dataset_folder(state.search_dataset), steps=steps)
    return SearchConfig(space, state.search_algorithm, objective, budget, seed, population, min(3, population), 4,
                        train)


def objective_label(config: dict) -> str:
    """Returns how a run's objective is named (as the CLI names it): the cost objective, or "proxy AP (short
    training on FOLDER)", never COCO AP."""
    if config["objective"] == "proxy-ap":
        from spinescope.analysis.training.train import proxy_label

        return f"{proxy_label(config['train']['dataset'] or '?')}, a proxy, not COCO AP"
    return "cost: P3 receptive field, pixels (higher is better)"

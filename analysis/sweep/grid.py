"""The grid of a sweep: specs x input sizes x batches x precisions, its points and their latency requests."""
from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass

from spinescope.analysis.latency.request import MAX_BATCH, PRECISIONS, LatencyRequest
from spinescope.spinenet.input_size import (InputSize, non_ascii_digit_problem, normalize, parse_size, size_label,
                                            size_to_json)
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.validate import LIMITS


class GridError(ValueError):
    """A bad grid value; str() is one line with the value escaped."""


@dataclass(frozen=True)
class Point:
    """One grid point: the spec (its argument as given, and the spec), input size, batch, precision."""

    spec_arg: str
    spec: Spec
    input_size: InputSize
    batch: int
    precision: str

    @property
    def key(self) -> tuple:
        return (self.spec_arg, self.input_size, self.batch, self.precision)

    def label(self) -> str:
        return f"{self.spec.name}@{size_label(self.input_size)} b{self.batch} {self.precision}"


@dataclass(frozen=True)
class RunOptions:
    """Options every point shares (those of the latency command)."""

    head: str = "none"
    device: str = "auto"
    iters: int = 20
    warmup: int = 3
    threads: int | None = None
    timeout: float = 600.0
    channels_last: bool = False
    fold_bn: bool = False
    per_block: bool = False
    optimizer: str = "sgd"

    def to_dict(self) -> dict:
        return asdict(self)


# Bounds on what a grid may ask for, checked before anything is built: the length of one comma list's text, the
# number of items in it, and the number of points (specs x sizes x batches x precisions, counted as a product). The
# app's form allows fewer points (its own limit, see app/sweep_tab.py).
MAX_TEXT = 2000
MAX_ITEMS = 128
MAX_POINTS = 4096


def comma_items(text: str, what: str) -> list[str]:
    """Returns the items of a comma list, stripped; raises GridError (one line) for a text longer than MAX_TEXT
    characters or more than MAX_ITEMS items, before splitting more than that."""
    text = str(text)
    if len(text) > MAX_TEXT:
        raise GridError(f"{what}: the text is {len(text):,} characters, more than {MAX_TEXT:,}; give at most "
                        f"{MAX_ITEMS} values")
    items = text.split(",", MAX_ITEMS)  # at most MAX_ITEMS + 1 pieces, whatever the text
    if len(items) > MAX_ITEMS:
        raise GridError(f"{what}: more than {MAX_ITEMS} values in the comma list; give at most {MAX_ITEMS}")
    return [item.strip() for item in items]


def _distinct(values: list) -> list:
    """The values without repeats, first occurrence kept, in linear time."""
    return list(dict.fromkeys(values))


_ASCII_INT = re.compile(r"[-+]?[0-9]{1,12}")


def int_list(text: str, what: str, low: int, high: int) -> list[int]:
    """Parses '512,640,1024' into distinct ints in [low, high], in the order given (ASCII digits only); raises
    GridError."""
    values = []
    for item in comma_items(text, what):
        problem = non_ascii_digit_problem(item, what)
        if problem:
            raise GridError(problem)
        if not _ASCII_INT.fullmatch(item):
            raise GridError(f"{what}: {ascii(item[:40])} is not an integer (ASCII digits 0-9; give a comma "
                            "list such as 512,640)")
        value = int(item)
        if not low <= value <= high:
            raise GridError(f"{what} {value} is out of range [{low}, {high}]")
        values.append(value)
    return _distinct(values)


def input_sizes(text: str) -> list[InputSize]:
    """Returns the sizes of a comma list such as "512,640,1333x800" (N square, or WIDTHxHEIGHT), without repeats."""
    values = []
    for item in comma_items(text, "input sizes"):
        try:
            values.append(parse_size(item, LIMITS["min_input_size"], LIMITS["max_input_size"]))
        except ValueError as error:
            raise GridError(str(error)) from None
    return _distinct(values)


def batches(text: str) -> list[int]:
    return int_list(text, "batch", 1, MAX_BATCH)


def precisions(text: str) -> list[str]:
    values = []
    for item in comma_items(text, "precisions"):
        if item not in PRECISIONS:
            raise GridError(f"unknown precision {ascii(item[:40])}; use a comma list of "
                            f"{', '.join(PRECISIONS)}")
        values.append(item)
    return _distinct(values)


def count_points(specs: int, sizes: int, batch_count: int, precision_count: int, limit: int = MAX_POINTS,
                 hint: str = "") -> int:
    """Returns the number of grid points, specs x sizes x batches x precisions, counted before anything is built;
    raises GridError (one line) when it is over `limit`."""
    count = specs * max(sizes, 1) * batch_count * precision_count
    if count > limit:
        raise GridError(f"{count:,} points ({specs} model(s) x {max(sizes, 1)} size(s) x {batch_count} batch(es) x "
                        f"{precision_count} precision(s)) is more than {limit:,}; use fewer models, sizes, batches "
                        f"or precisions{hint}")
    return count


def grid_points(specs: list[tuple[str, Spec, int | None]], sizes: list[int] | None, batch_list: list[int],
                precision_list: list[str], limit: int = MAX_POINTS) -> list[Point]:
    """Every point of the grid, specs outermost. `specs`: (argument, spec, size from NAME@SIZE or None); without
    `sizes` each spec runs at its NAME@SIZE or its own input size. Raises GridError, before building any point,
    when there would be more than `limit`."""
    count_points(len(specs), len(sizes or ()), len(batch_list), len(precision_list), limit)
    points = []
    for (arg, spec, own_size), size, batch, precision in itertools.product(
            specs, sizes or [None], batch_list, precision_list):
        points.append(Point(arg, spec, normalize(size or own_size or spec.input_size), batch, precision))
    return points


def request_for(point: Point, options: RunOptions) -> LatencyRequest:
    return LatencyRequest(point.spec, point.input_size, options.head, point.batch, point.precision,
                          options.channels_last, options.fold_bn, False, point.label())


def point_record(point: Point, result, options: RunOptions) -> dict:
    """The JSON-ready record of one measured point: the grid coordinates, the latency figures (ms), the per-block
    medians (with per_block), the MACs of one image with the head at this input size (`macs`; a forward pass does
    batch x macs) and the training-memory estimate at this point (bytes)."""
    from spinescope.analysis.counting.fast import count_model
    from spinescope.analysis.memory.estimate import estimate_training_memory

    train = estimate_training_memory(point.spec, point.input_size, options.head, point.batch, options.optimizer,
                                     point.precision, device="cuda" if result.device == "cuda" else "cpu")
    return {"spec": point.spec_arg, "name": point.spec.name, "input_size": size_to_json(point.input_size),
            "batch": point.batch,
            "precision": point.precision, "device": result.device, "device_name": result.device_name,
            "median_ms": result.median_ms, "p10_ms": result.p10_ms, "p90_ms": result.p90_ms,
            "throughput": result.throughput, "peak_memory_bytes": result.peak_memory_bytes,
            "macs": count_model(point.spec, point.input_size, options.head).macs(""),
            "train_peak_bytes": train.peak_bytes, "train_optimizer": options.optimizer,
            "blocks": [{"id": row["id"], "median_ms": row["median_ms"]} for row in result.blocks],
            "history_id": result.history_id, "run_id": result.run_id}

"""Latency results: the figures of one measured model, and the pure functions that build them from the worker's
result message (see `analysis.latency.worker`). Nothing here does I/O, starts a process or reads a clock.

Times are milliseconds, throughput images per second, memory bytes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from spinescope.analysis.latency.request import LatencyRequest
from spinescope.spinenet.input_size import InputSize, size_to_json
from spinescope.spinenet.spec import spec_hash


@dataclass
class LatencyResult:
    """Figures for one model of a run. Times in ms over `iterations` timed calls (one call = one forward pass of
    `batch` images); `throughput` in images/s from the median; memory in bytes (`peak_memory_bytes` = weights and
    buffers + the measured growth during one forward pass); `compile_s` is the time of the compiling first call,
    never part of the timings. `ratio_to_first` = this median / the first model's median in the same run."""

    label: str
    spec_name: str
    spec_hash: str
    input_size: InputSize
    head: str
    batch: int
    device: str
    device_name: str
    precision: str
    dtype: str
    memory_format: str
    fold_bn: bool
    compiled: bool
    threads: int
    iterations: int
    warmup: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    throughput: float
    peak_memory_bytes: int
    weight_bytes: int
    activation_bytes: int
    estimated_memory_bytes: int
    build_s: float
    compile_s: float | None
    bn_folded: int
    bn_remaining: int
    ratio_to_first: float
    torch_version: str
    environment: dict
    run_id: str
    created_at: str
    samples_ms: list[float] = field(default_factory=list, repr=False)
    history_id: int | None = None
    # Per block (a run with per_block): one row per timed unit (see `block_rows`), the sum of their medians and its
    # signed difference to `median_ms` (a fraction), and the hooked passes' end-to-end median with the hooks'
    # overhead (hooked median / median - 1). Empty / None otherwise.
    blocks: list[dict] = field(default_factory=list)
    blocks_sum_ms: float | None = None
    blocks_sum_diff: float | None = None
    hooked_median_ms: float | None = None
    hook_overhead: float | None = None
    hooked_samples_ms: list[float] = field(default_factory=list, repr=False)
    block_samples_ms: list[list[float]] = field(default_factory=list, repr=False)

    @property
    def settings(self) -> dict:
        """The options the figures depend on (what the history compares like with like on)."""
        return {"input_size": size_to_json(self.input_size), "head": self.head, "batch": self.batch, "device": self.device,
                "precision": self.precision, "channels_last": self.memory_format == "channels_last",
                "fold_bn": self.fold_bn, "compile": self.compiled, "threads": self.threads,
                "iterations": self.iterations, "warmup": self.warmup}

    def to_dict(self, samples: bool = False) -> dict:
        """JSON-ready figures; `name` is the label; per-call samples only when `samples`."""
        data = asdict(self)
        data["input_size"] = size_to_json(self.input_size)
        data["name"] = data.pop("label")
        data["settings"] = self.settings
        if not samples:
            for name in ("samples_ms", "hooked_samples_ms", "block_samples_ms"):
                data.pop(name)
        return data


def percentile(samples: list[float], q: float) -> float:
    """The `q`-th percentile (0..100) of `samples`, linearly interpolated as numpy does."""
    return float(np.percentile(np.asarray(samples, dtype=float), q))


def graph_node(unit_id: str) -> str | None:
    """The graph node id of a timed unit ('backbone.blocks.b3' -> 'b3'), None for the stem, endpoints and head."""
    prefix = "backbone.blocks."
    return unit_id[len(prefix):] if unit_id.startswith(prefix) else None


def block_rows(ids: list[str], block_samples: list[list[float]]) -> list[dict]:
    """One row per timed unit from per-pass samples (`block_samples[pass][unit]`, ms): id (the module's name),
    node (its graph node id or None), median_ms, p10_ms, p90_ms and share (its median / the sum of the medians)."""
    columns = np.asarray(block_samples, dtype=float).reshape(len(block_samples), len(ids))
    medians = [percentile(columns[:, index], 50) for index in range(len(ids))]
    total = sum(medians)
    return [{"id": unit_id, "node": graph_node(unit_id), "median_ms": median,
             "p10_ms": percentile(columns[:, index], 10), "p90_ms": percentile(columns[:, index], 90),
             "share": median / total if total > 0 else 0.0}
            for index, (unit_id, median) in enumerate(zip(ids, medians))]


def blocks_check(rows: list[dict], median_ms: float) -> tuple[float, float]:
    """(sum of the per-unit medians in ms, its signed difference to the end-to-end `median_ms` as a fraction)."""
    total = float(sum(row["median_ms"] for row in rows))
    return total, (total - median_ms) / median_ms


def dtype_name(precision: str) -> str:
    """How the figures name a precision: 'float32', 'float16 (autocast)' or 'bfloat16 (autocast)'."""
    return {"fp32": "float32", "fp16": "float16 (autocast)", "bf16": "bfloat16 (autocast)"}[precision]


def run_order(labels: list[str], message: dict) -> list[str]:
    """The labels in the order the worker timed them (A B A B ...), from the result message's `order`."""
    return [labels[index] for index in message["order"]]


def worker_phase_times(message: dict) -> dict[str, float]:
    """Seconds the worker spent per phase, from its result message: build_s and compile_s summed over the models,
    then warmup_s and measure_s as the worker reported them."""
    times = {"build_s": sum(m["build_s"] for m in message["models"]),
             "compile_s": sum(m["compile_s"] or 0.0 for m in message["models"])}
    times.update(message["phases"])
    return times


def build_results(requests: list[LatencyRequest], message: dict, estimates: list[int], *, device: str, warmup: int,
                  run_id: str, created_at: str) -> list[LatencyResult]:
    """Returns one LatencyResult per request (in request order) from the worker's result message; `estimates` are
    the bytes estimated per model before the run; `ratio_to_first` compares each median with the first one's."""
    environment = message["environment"]
    results = []
    for request, figures, estimate in zip(requests, message["models"], estimates):
        samples = figures["samples_ms"]
        median = percentile(samples, 50)
        results.append(LatencyResult(
            label=figures["label"], spec_name=request.spec.name, spec_hash=spec_hash(request.spec),
            input_size=request.size, head=request.head, batch=request.batch, device=device,
            device_name=environment["device_name"], precision=request.precision,
            dtype=dtype_name(request.precision),
            memory_format="channels_last" if request.channels_last else "contiguous",
            fold_bn=request.fold_bn, compiled=request.compile, threads=environment["threads"],
            iterations=len(samples), warmup=warmup, median_ms=median, p10_ms=percentile(samples, 10),
            p90_ms=percentile(samples, 90), mean_ms=float(np.mean(samples)), min_ms=float(np.min(samples)),
            throughput=request.batch / (median / 1e3),
            peak_memory_bytes=figures["weight_bytes"] + figures["activation_bytes"],
            weight_bytes=figures["weight_bytes"], activation_bytes=figures["activation_bytes"],
            estimated_memory_bytes=estimate, build_s=figures["build_s"], compile_s=figures["compile_s"],
            bn_folded=figures["bn_folded"], bn_remaining=figures["bn_remaining"], ratio_to_first=1.0,
            torch_version=environment["torch_version"], environment=environment, run_id=run_id,
            created_at=created_at, samples_ms=samples))
    for result, figures in zip(results, message["models"]):
        result.ratio_to_first = result.median_ms / results[0].median_ms
        if figures.get("block_ids"):
            result.blocks = block_rows(figures["block_ids"], figures["block_samples_ms"])
            result.blocks_sum_ms, result.blocks_sum_diff = blocks_check(result.blocks, result.median_ms)
            result.hooked_samples_ms = list(figures["hooked_samples_ms"])
            result.block_samples_ms = [list(row) for row in figures["block_samples_ms"]]
            result.hooked_median_ms = percentile(result.hooked_samples_ms, 50)
            result.hook_overhead = result.hooked_median_ms / result.median_ms - 1
    return results

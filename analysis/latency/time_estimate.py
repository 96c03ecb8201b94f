"""How long a latency run on the CPU will take, from a rate measured on this machine and its current load.

The rate is that of a stored CPU result (same precision) of one of the run's models or of a built-in, the one whose
work per pass is closest to the run's (the newest among equals): its MACs per image x batch / its median pass, in
MACs per second, with its p10 and p90 passes for the spread. Load scales
it: a compute-bound job of `threads` threads beside `load` other runnable tasks on `cores` cores gets about
cores / (load + threads) of its threads' time once they outnumber the cores. The stored rate is brought to an idle
machine with the load recorded when it was measured (`environment["load_average"]`; 0 for rows stored before it
was), then to the current load: the lowest and highest of the 1-, 5- and 15-minute load averages bound the spread.
Without a measurement the assumed rate `CPU_MACS_PER_SECOND` is used, with a wide spread.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# CPU speed assumed for a forward pass (multiply-adds per second, fp32): the low end of what this 2-core machine
# measured (17-40 GMAC/s), so that estimates err on the long side without refusing runs that would finish.
CPU_MACS_PER_SECOND = 20e9
WORKER_START_S = (3.0, 4.0, 5.0)  # process start and imports: low, likely, high (README, "Latency")
ASSUMED_SPREAD = (0.5, 4.0)  # the assumed rate may be this many times too slow / too fast for a machine


@dataclass(frozen=True)
class TimeEstimate:
    """A run's expected duration in seconds (`low_s` <= `seconds` <= `high_s`), what the rate comes from (one
    plain-text line), and the load (runnable tasks, 1-minute average; None where unknown) on `cores` cores."""

    seconds: float
    low_s: float
    high_s: float
    basis: str
    load: float | None
    cores: int

    @property
    def overloaded(self) -> bool:
        """True when more tasks want to run than the machine has cores: timings will be slow and noisy."""
        return self.load is not None and self.load > self.cores


@dataclass(frozen=True)
class MeasuredRate:
    """MACs per second of a stored CPU result, brought to an idle machine: at its median, p10 and p90 pass."""

    median: float
    fast: float
    slow: float
    label: str
    created_at: str


def slowdown(load: float, threads: int, cores: int) -> float:
    """Returns how many times longer a compute-bound job of `threads` threads takes beside `load` other runnable
    tasks on `cores` cores than on an idle machine (1.0 while they fit)."""
    return max(1.0, (load + threads) / max(cores, 1))


def current_load() -> tuple[float, ...]:
    """Returns the 1-, 5- and 15-minute load averages, or () where the system has none."""
    try:
        return tuple(os.getloadavg())
    except (OSError, AttributeError):
        return ()


def measured_rate(entry, macs_per_image: float) -> MeasuredRate:
    """Returns the idle-machine rate of a stored CPU HistoryEntry whose model does `macs_per_image` MACs."""
    environment = entry.environment or {}
    cores = environment.get("cores") or os.cpu_count() or 1
    idle = slowdown(float(environment.get("load_average") or 0.0), entry.threads, cores)
    work = macs_per_image * entry.batch * idle * 1e3  # MACs x ms per s
    return MeasuredRate(work / entry.median_ms, work / entry.p10_ms, work / entry.p90_ms, entry.label,
                        entry.created_at)


def closest_rate(specs, precision: str, macs_per_pass: float | None = None, path=None,
                 limit: int = 200) -> MeasuredRate | None:
    """Returns the rate of a stored CPU result in `precision` of one of `specs` or of a built-in: of the one whose
    work per pass (MACs per image x batch) is closest to `macs_per_pass` by ratio, the newest among equals (None:
    the newest); None when the history holds none (or cannot be read). Small inputs run at a lower rate than large
    ones (fixed costs per layer), so the rate of a like-sized run predicts best."""
    import math

    from spinescope.analysis.counting.fast import count_model
    from spinescope.analysis.latency.history import list_results
    from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
    from spinescope.spinenet.spec import spec_hash

    known = {spec_hash(spec): spec for spec in [*specs, *map(load_builtin, BUILTIN_NAMES)]}
    try:
        entries = list_results(limit=limit, path=path)
    except Exception:  # noqa: BLE001 - no history: the assumed rate is used
        return None
    counted: dict[tuple, float] = {}
    best, best_distance = None, math.inf
    for entry in entries:  # newest first
        if entry.device != "cpu" or entry.precision != precision or entry.spec_hash not in known:
            continue
        key = (entry.spec_hash, str(entry.input_size), entry.head)
        if key not in counted:
            counted[key] = count_model(known[entry.spec_hash], entry.input_size, entry.head, 1000, "gap").macs("")
        if macs_per_pass is None:
            return measured_rate(entry, counted[key])
        distance = abs(math.log(counted[key] * entry.batch / macs_per_pass))
        if distance < best_distance:
            best, best_distance = (entry, counted[key]), distance
    return measured_rate(*best) if best else None


def estimate_run(macs_per_pass: float, passes: int, threads: int, rate: MeasuredRate | None,
                 loads: tuple[float, ...], cores: int) -> TimeEstimate:
    """Returns the time of `passes` forward passes of `macs_per_pass` MACs (all models, the batch included) with
    `threads` threads, plus the worker's start, at `rate` (None: the assumed rate) under `loads` (1-, 5-, 15-minute
    load averages; () where unknown, taken as idle)."""

    if rate is None:
        likely = CPU_MACS_PER_SECOND
        fast, slow = likely * ASSUMED_SPREAD[1], likely * ASSUMED_SPREAD[0]
        basis = f"an assumed {CPU_MACS_PER_SECOND / 1e9:g} GMAC/s (nothing measured on this CPU yet)"
    else:
        likely, fast, slow = rate.median, rate.fast, rate.slow
        basis = (f"the rate measured for the closest workload, {rate.median / 1e9:,.1f} GMAC/s ({rate.label}, "
                 f"{rate.created_at.replace('T', ' ')[:16]} UTC)")
    load = loads[0] if loads else None
    lightest, heaviest = (min(loads), max(loads)) if loads else (0.0, 0.0)
    work = macs_per_pass * passes
    low, start, high = WORKER_START_S
    return TimeEstimate(seconds=start + work / likely * slowdown(load or 0.0, threads, cores),
                        low_s=low + work / fast * slowdown(lightest, threads, cores),
                        high_s=high + work / slow * slowdown(heaviest, threads, cores),
                        basis=basis, load=load, cores=cores)


def load_warning(estimate: TimeEstimate) -> str | None:
    """Returns one line when the machine is busier than its cores (plain text), else None."""
    return busy_warning(estimate.load, estimate.cores) if estimate.overloaded else None


def busy_warning(load: float | None, cores: int) -> str | None:
    """Returns one line (plain text) when the 1-minute `load` average exceeds `cores`, else None."""
    if load is None or load <= cores:
        return None
    return (f"This machine is busy: load average {load:.1f} on {cores} CPU "
            f"core{'s' if cores != 1 else ''}. The run will take longer than on an idle machine and its "
            "timings will be noisier; fewer threads (1) or a quieter moment give steadier figures.")


def estimate_cpu_seconds(macs: float, passes: int = 1) -> float:
    """Returns a pessimistic estimate in seconds of `passes` forward passes of `macs` multiply-adds on the CPU."""
    return passes * macs / CPU_MACS_PER_SECOND

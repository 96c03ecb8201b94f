"""Per-block time share beside MACs share, for the graph's time modes and the MACs-vs-time plot.

A per-block latency run (`latency --per-block`, or the app's Latency tab) times every unit of the forward pass;
units that are graph nodes (`backbone.blocks.<id>`, their `node`) are compared here with the same nodes' MACs
(`analysis.counting.analyze`, each block with the resampling that feeds it, as the timed module). Both shares are
taken over the same set of nodes, so they are comparable: a block far above the diagonal (time share > MACs share)
is latency-unfriendly. The stem conv, the endpoints and the head are not graph nodes and are left out of both.
"""
from __future__ import annotations

from dataclasses import dataclass

from spinescope.spinenet.input_size import InputSize, normalize


@dataclass(frozen=True)
class PerBlockRun:
    """The per-block figures of one stored (or just measured) result: `blocks` rows as `LatencyResult.blocks`
    (id, node, median_ms, p10_ms, p90_ms, share), the end-to-end `median_ms`, `blocks_sum_ms`, `blocks_sum_diff`
    (fraction), `hooked_median_ms`, `hook_overhead` (fraction), and what it was measured at."""

    label: str
    input_size: InputSize
    head: str
    batch: int
    device_name: str
    precision: str
    created_at: str
    median_ms: float
    blocks: list[dict]
    blocks_sum_ms: float | None
    blocks_sum_diff: float | None
    hooked_median_ms: float | None
    hook_overhead: float | None


def per_block_run(result) -> PerBlockRun | None:
    """Returns the per-block figures of a LatencyResult or a HistoryEntry, or None when it has none."""
    figures = getattr(result, "figures", None)
    source = figures if isinstance(figures, dict) else {name: getattr(result, name, None) for name in (
        "blocks", "blocks_sum_ms", "blocks_sum_diff", "hooked_median_ms", "hook_overhead")}
    blocks = source.get("blocks") or []
    if not blocks:
        return None
    return PerBlockRun(result.label, normalize(result.input_size), result.head, result.batch, result.device_name,
                       result.precision, result.created_at, result.median_ms, [dict(row) for row in blocks],
                       source.get("blocks_sum_ms"), source.get("blocks_sum_diff"), source.get("hooked_median_ms"),
                       source.get("hook_overhead"))


def latest_per_block(spec, path=None, limit: int = 200) -> PerBlockRun | None:
    """Returns the most recent stored per-block result of this architecture (its content hash; any input size,
    head, batch or device), or None when there is none among the last `limit` results of the spec."""
    from spinescope.analysis.latency.history import list_results
    from spinescope.spinenet.spec import spec_hash

    for entry in list_results(limit=limit, spec_hash=spec_hash(spec), path=path):
        run = per_block_run(entry)
        if run is not None:
            return run
    return None


def time_and_macs_shares(spec, run: PerBlockRun) -> list[dict]:
    """Returns one row per timed graph node, in the run's order: {node, median_ms, macs, time_share, macs_share};
    shares are fractions (0..1) of the sums over these nodes, MACs of one image at the run's input size."""
    from spinescope.analysis.counting import analyze

    macs = {block.id: block.macs for block in analyze(spec, run.input_size).blocks}
    rows = [row for row in run.blocks if row.get("node") and row["node"] in macs]
    total_time = sum(row["median_ms"] for row in rows)
    total_macs = sum(macs[row["node"]] for row in rows)
    return [{"node": row["node"], "median_ms": row["median_ms"], "macs": macs[row["node"]],
             "time_share": row["median_ms"] / total_time if total_time > 0 else 0.0,
             "macs_share": macs[row["node"]] / total_macs if total_macs > 0 else 0.0} for row in rows]

"""A population's distributions (Radosavovic et al. 2019: study a design space by its distributions, not single
points): quantiles of MACs, params, the receptive field of each output level and training memory, the empirical
distribution function (EDF) of any metric, and where reference models (SpineNet-49, ResNet-50-FPN) sit in them."""
from __future__ import annotations

from bisect import bisect_left, bisect_right

from spinescope.analysis.search.space import Space

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
REFERENCES = ("spinenet-49", "resnet50-fpn")
LABELS = {"macs": ("MACs (G)", 1e9), "params": ("params (M)", 1e6), "memory_bytes": ("train mem (GiB)", 2 ** 30)}


def quantile(sorted_values: list[float], q: float) -> float:
    """Returns the q-quantile (0..1) of already sorted values, linear between order statistics."""
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def percentile_rank(sorted_values: list[float], value: float) -> float:
    """Returns the percentage (0..100) of the population below `value`, ties counted half."""
    below, upto = bisect_left(sorted_values, value), bisect_right(sorted_values, value)
    return 100.0 * (below + (upto - below) / 2) / len(sorted_values)


def edf(values: list[float]) -> tuple[list[float], list[float]]:
    """Returns (sorted values, fraction of the population <= each): the empirical distribution function."""
    ordered = sorted(values)
    n = len(ordered)
    return ordered, [(i + 1) / n for i in range(n)]


def reference_metrics(space: Space, names=REFERENCES) -> dict[str, dict]:
    """Returns {name: metrics} of the built-ins `names` counted as the space counts its candidates (same input
    size, head, memory batch): macs, params, rf_P3..rf_P7, memory_bytes."""
    from spinescope.analysis.architecture.receptive_field import output_receptive_fields
    from spinescope.analysis.counting.fast import count_model
    from spinescope.analysis.memory.estimate import estimate_training_memory
    from spinescope.spinenet.builtins import load_builtin

    out = {}
    for name in names:
        spec = load_builtin(name)
        counts = count_model(spec, space.input_size, space.head)
        metrics = {"macs": counts.macs(""), "params": counts.params[""]}
        for level, rf in output_receptive_fields(spec, space.input_size).items():
            metrics[f"rf_{level}"] = rf
        metrics["memory_bytes"] = estimate_training_memory(spec, space.input_size, space.head,
                                                           space.constraints.memory_batch).peak_bytes
        out[spec.name] = metrics
    return out


def summarize(metrics: list[dict], references: dict[str, dict] | None = None) -> dict:
    """Returns {metric: {"quantiles": {q: value}, "references": {name: {"value", "percentile"}}}} for every numeric
    metric all rows share (macs, params, rf_P3.., memory_bytes, ...), values in the metric's own unit (MACs,
    params, pixels, bytes); percentile: 0..100 of the population below the reference."""
    if not metrics:
        return {}
    keys = [key for key in metrics[0] if all(isinstance(row.get(key), (int, float)) for row in metrics)]
    summary = {}
    for key in keys:
        ordered = sorted(row[key] for row in metrics)
        refs = {name: {"value": values[key], "percentile": percentile_rank(ordered, values[key])}
                for name, values in (references or {}).items() if key in values}
        summary[key] = {"quantiles": {q: quantile(ordered, q) for q in QUANTILES}, "references": refs}
    return summary


def format_summary(summary: dict, count: int) -> str:
    """Returns the summary as a text table: one row per metric, its quantiles, then each reference's value and
    percentile in the population."""
    names = sorted({name for item in summary.values() for name in item["references"]})
    head = f"{'metric':16s} " + " ".join(f"{'min' if q == 0 else 'max' if q == 1 else f'p{int(q * 100)}':>8s}"
                                        for q in QUANTILES)
    head += "".join(f"  {name[:22]:>22s}" for name in names)
    lines = [f"population of {count} candidate(s); a reference's column: its value (percentile in the population)",
             head]
    for key, item in summary.items():
        if key == "dead":
            continue
        label, scale = LABELS.get(key, (f"{key[3:]} RF (px)" if key.startswith("rf_") else key, 1))
        row = f"{label[:16]:16s} " + " ".join(f"{item['quantiles'][q] / scale:8.4g}" for q in QUANTILES)
        for name in names:
            ref = item["references"].get(name)
            text = f"{ref['value'] / scale:.4g} ({ref['percentile']:.0f}%)" if ref else "-"
            row += f"  {text:>22s}"
        lines.append(row)
    return "\n".join(lines)


def pareto_rows(rows: list[dict]) -> list[dict]:
    """Returns the finished candidates (rows as `Store.candidates` gives them) on the front of MACs against the
    objective: no other candidate has an objective at least as high for no more MACs (and is better in one), ordered
    by MACs. Read along it: for a MACs budget, the best objective the search found."""
    done = sorted((row for row in rows if row["status"] == "done"), key=lambda r: (r["macs"], -r["objective"]))
    front, best = [], float("-inf")
    for row in done:
        if row["objective"] > best:
            front.append(row)
            best = row["objective"]
    return front

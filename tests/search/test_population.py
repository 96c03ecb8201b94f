"""The population summary: quantiles, percentile ranks and the EDF against hand-computed values."""
from spinescope.analysis.search.population import (edf, format_summary, percentile_rank, quantile, reference_metrics,
                                                   summarize)
from spinescope.analysis.search.space import make_space


def test_quantile_percentile_edf_by_hand():
    values = [10, 20, 30, 40, 50]
    assert quantile(values, 0.5) == 30 and quantile(values, 0.25) == 20 and quantile(values, 0.1) == 14
    assert percentile_rank(values, 30) == 50.0  # 2 below, the tie counts half: 2.5 of 5
    assert percentile_rank(values, 5) == 0.0 and percentile_rank(values, 99) == 100.0
    assert edf([3, 1, 2]) == ([1, 2, 3], [1 / 3, 2 / 3, 1.0])


def test_summary_places_the_references():
    rows = [{"macs": m, "params": 1} for m in (80e9, 90e9, 100e9, 110e9)]
    summary = summarize(rows, {"R": {"macs": 95e9}})
    assert summary["macs"]["quantiles"][0.0] == 80e9 and summary["macs"]["quantiles"][1.0] == 110e9
    assert summary["macs"]["references"]["R"]["percentile"] == 50.0
    assert "R" not in summary["params"]["references"]
    assert "95 (50%)" in format_summary(summary, 4)


def test_reference_metrics_are_the_published_models_counted_here():
    refs = reference_metrics(make_space())
    # SpineNet-49 with its RetinaNet head at 640: 85.3 GMACs and 28.5 M params (docs/spinenet-facts.md section 9)
    assert round(refs["SpineNet-49"]["macs"] / 1e9, 1) == 85.3
    assert round(refs["SpineNet-49"]["params"] / 1e6, 1) == 28.5
    assert round(refs["ResNet-50-FPN"]["macs"] / 1e9) == 97
    assert set(refs["ResNet-50-FPN"]) >= {"rf_P3", "rf_P7", "memory_bytes"}


def test_pareto_front_of_macs_against_the_objective():
    from spinescope.analysis.search.population import pareto_rows

    rows = [{"idx": i, "status": s, "macs": m, "objective": o} for i, (s, m, o) in enumerate([
        ("done", 90, 5.0), ("done", 80, 4.0), ("done", 85, 3.0), ("done", 95, 7.0), ("failed", 70, None),
        ("done", 95, 6.0), ("done", 99, 7.0)])]
    # by hand: 80 -> 4 (cheapest), 90 -> 5, 95 -> 7; 85 (3 < 4), the second 95 (6) and 99 (7, no better) are dominated
    assert [row["idx"] for row in pareto_rows(rows)] == [1, 0, 3]

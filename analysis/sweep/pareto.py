"""The Pareto front of a sweep's MACs against latency: the points that get the most compute for their time.

A point is on the front when no other point has at least as many MACs per forward pass at no more latency
(and is better in one of the two). Read along the front: for a latency budget, the largest model (in MACs)
that meets it; a point below the front spends its time less efficiently than one on it.
"""
from __future__ import annotations


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Returns the indices of `points` ((macs, latency_ms) pairs) on the front, ordered by latency (then MACs,
    descending). Equal points are all on the front. O(n log n)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front, best_macs, best_latency = [], float("-inf"), None
    for index in order:
        macs, latency = points[index]
        if macs > best_macs:
            front.append(index)
            best_macs, best_latency = macs, latency
        elif macs == best_macs and latency == best_latency:
            front.append(index)
    return front

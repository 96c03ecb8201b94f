"""Params and MACs: fvcore's numbers summed over the structure in milliseconds (`fast`), fvcore's own trace of
the real module (`fvcore_trace`), and their attribution to blocks, parts and totals (`analysis`)."""
from spinescope.analysis.counting.analysis import COUNTERS, PARTS, Analysis, BlockCost, analyze
from spinescope.analysis.counting.fast import MAC_OPS, ModelCounts, clear_cache, count_differences, count_model
from spinescope.analysis.counting.fvcore_trace import count_params, count_with_fvcore

__all__ = ["COUNTERS", "PARTS", "Analysis", "BlockCost", "analyze", "MAC_OPS", "ModelCounts", "clear_cache",
           "count_differences", "count_model", "count_params", "count_with_fvcore"]

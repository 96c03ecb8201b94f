"""The defaults the command line and the app share, so that a figure asked for without options reads the same
everywhere: the app's sidebar starts from them, its Latency and Memory tabs start from the sidebar's choices, and
the `memory` command from the same values. The input size has no default here: it is the spec's own
(`Spec.input_size`), in the sidebar as on the command line."""
from __future__ import annotations

HEAD = "retinanet"  # the paper's detector: the sidebar's head, and the training-memory estimate's

# One training step (analysis.memory): the settings of README's "Training memory" figures.
TRAINING_BATCH = 8
OPTIMIZER = "sgd"
PRECISION = "fp32"
TRAINING_DEVICE = "cuda"
MEMORY_BUDGET_GIB = 16.0  # the app's budget for "largest batch that fits" (GiB = 2^30 bytes)

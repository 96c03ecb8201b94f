"""The current Model Garden block list (SpineNet-49's 15 blocks and its 16th, a level-2 output) as the tests of
min_level 2 (P2) read it: text and specs built from the tuple list, not from the code under test's own writer."""
from __future__ import annotations

from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import read_tuples

# Section 2 and 11 of the reference page, written out by hand.
MODEL_GARDEN_TEXT = """SPINENET_BLOCK_SPECS = [
    (2, 'bottleneck', (0, 1), False), (4, 'residual', (0, 1), False), (3, 'bottleneck', (2, 3), False),
    (4, 'bottleneck', (2, 4), False), (6, 'residual', (3, 5), False), (4, 'bottleneck', (3, 5), False),
    (5, 'residual', (6, 7), False), (7, 'residual', (6, 8), False), (5, 'bottleneck', (8, 9), False),
    (5, 'bottleneck', (8, 10), False), (4, 'bottleneck', (5, 10), True), (3, 'bottleneck', (4, 10), True),
    (5, 'bottleneck', (7, 12), True), (7, 'bottleneck', (5, 14), True), (6, 'bottleneck', (12, 14), True),
    (2, 'bottleneck', (2, 13), True),
]
"""
FIFTEEN_TEXT = MODEL_GARDEN_TEXT.replace("    (2, 'bottleneck', (2, 13), True),\n", "")


def model_garden_spec(min_level: int):
    """Returns SpineNet-49 with the 16-block list, outputs P<min_level>-P7."""
    return read_tuples(MODEL_GARDEN_TEXT, load_builtin("spinenet-49"), min_level).spec

"""The question people ask of the training-memory estimate: the largest batch that fits a budget, at each input
size, and the estimated peak against the batch, for a spec beside the reference ResNet-50-FPN. Shared by the CLI
(`memory --fit`) and the app's Memory tab. Bytes everywhere."""
from __future__ import annotations

from spinescope.analysis.memory.estimate import estimate_training_memory, max_batch
from spinescope.spinenet.input_size import InputSize, hw, normalize, size_to_json
from spinescope.spinenet.spec import Spec

FIT_SIZES = (384, 512, 640, 896, 1024, 1280)
FIT_BATCHES = (1, 2, 4, 8, 16, 32, 64)
REFERENCE = "resnet50-fpn"
MAX_BATCH = 1 << 20


def reference_spec() -> Spec:
    """Returns ResNet-50-FPN, the reference every fit is shown beside."""
    from spinescope.spinenet.builtins import load_builtin

    return load_builtin(REFERENCE)


def fit_rows(spec: Spec, budget_bytes: int, sizes, **options) -> list[dict]:
    """Returns, per input size (ascending by area, distinct; "WxH" for a non-square one), {input_size, max_batch, <REFERENCE>_max_batch}: the largest
    batch whose estimated peak fits `budget_bytes` (0: not even one image). `options`: head, optimizer,
    precision, device as `estimate_training_memory` takes them."""
    reference = reference_spec()
    ordered = sorted({normalize(size) for size in sizes}, key=lambda size: hw(size)[0] * hw(size)[1])
    return [{"input_size": size_to_json(size),
             "max_batch": max_batch(spec, budget_bytes, size, limit=MAX_BATCH, **options),
             f"{REFERENCE}_max_batch": max_batch(reference, budget_bytes, size, limit=MAX_BATCH, **options)}
            for size in ordered]


def memory_vs_batch(spec: Spec, input_size: InputSize, batches=FIT_BATCHES, **options) -> list[dict]:
    """Returns, per batch, {batch, peak_bytes, <REFERENCE>_peak_bytes}: the estimated peak of one training step of
    `spec` and of ResNet-50-FPN at `input_size` pixels (same options)."""
    reference = reference_spec()
    return [{"batch": b, "peak_bytes": estimate_training_memory(spec, input_size, batch=b, **options).peak_bytes,
             f"{REFERENCE}_peak_bytes": estimate_training_memory(reference, input_size, batch=b,
                                                                 **options).peak_bytes}
            for b in batches]

"""The peak memory of one training step, derived from the structure (`spinenet.describe`) without allocating.

A steady-state step: the optimizer state exists, gradients were set to None, then forward, backward and the
optimizer step. What is resident:

- weights: parameters and buffers (fp32; batch norm's running statistics and its int64 counter);
- gradients: one fp32 tensor per parameter (autocast keeps fp32 parameters, so fp32 gradients);
- optimizer state: SGD with momentum one fp32 buffer per parameter, AdamW two (exp_avg, exp_avg_sq) and a
  4-byte step per parameter tensor;
- activations kept for backward: for every call of the forward pass, the tensors autograd saves (each operator's
  `saved` in `spinenet.operators`), times the batch: conv saves its input; batch norm its input and two
  per-channel statistics (fp32); ReLU and sigmoid their output; SiLU its input; max-pool its (padded) input and
  int64 indices; linear and adaptive average pooling their input; mul both inputs; add, resize, mean, stack and
  identity nothing. A tensor saved by several calls (a ReLU's output that the next convolution saves again, a
  feature map read by several convolutions) counts once: the input of a call is taken to be the latest earlier
  output of that shape. Under autocast (bf16/fp16) activations take 2 bytes, the fp32 image is saved as a cast
  copy, and each conv and linear weight has a half-precision copy saved for backward.

The peak is found by replaying backward in reverse forward order: a saved tensor is freed once the backward of
the earliest call that saved it has run, a layer's gradients appear at the backward of its last call, and each
call's backward briefly holds the gradients of its input and output. The optimizer step adds AdamW's temporaries:
on a GPU torch's foreach implementation (one fp32 copy of the parameters), on the CPU its per-tensor loop (two
copies of the largest parameter tensor); SGD with momentum updates its buffers in place. Nothing is fitted to
measurements: the error against real steps is measured in tests/memory and benchmarks/bench_memory.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from spinescope.spinenet.describe import describe
from spinescope.spinenet.input_size import InputSize, hw, normalize, size_to_json
from spinescope.spinenet.operators import FP32_BYTES, INT64_BYTES, OPERATORS, layer_params, operator
from spinescope.spinenet.registry import NO_HEAD
from spinescope.spinenet.spec import Spec

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("fp32", "bf16", "fp16")
FP32, INT64 = FP32_BYTES, INT64_BYTES


def unit_of(name: str) -> str:
    """The unit a module belongs to, as the per-block latency names it: 'backbone.blocks.<id>', 'backbone.<part>',
    'head' or '' (the model's own calls)."""
    parts = name.split(".")
    if parts[:2] == ["backbone", "blocks"] and len(parts) > 2:
        return ".".join(parts[:3])
    if parts[0] == "backbone" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


@dataclass(frozen=True)
class _Saved:
    """One tensor autograd keeps: bytes per image (per_image) or for the whole batch (fixed), the forward order
    of the earliest call that saves it, and the unit it is attributed to."""

    per_image: int
    fixed: int
    first_saver: int
    unit: str


@dataclass
class _Plan:
    """Everything that does not depend on the batch: the saved tensors, the gradient bytes per call order, the
    transient gradient bytes per image of each call, and the fixed sizes."""

    param_elements: int
    param_tensors: int
    buffer_bytes: int
    matmul_weight_elements: int
    largest_param_tensor: int
    saved: list[_Saved]
    grads_at: dict[int, int]          # forward order of a layer's last call -> its gradient bytes
    transient: dict[int, int]         # forward order -> bytes per image of the gradients its backward holds
    orders: list[int]


@dataclass(frozen=True)
class TrainingMemory:
    """Estimated bytes of one training step. `activations_bytes` are the tensors kept for backward (autocast's
    weight copies included); `blocks` splits them per unit ({id, activations_bytes, params}); `peak_bytes` is the
    replayed peak (see the module's docstring), at most the sum of the parts plus the transient gradients."""

    spec_name: str
    head: str
    input_size: InputSize
    batch: int
    optimizer: str
    precision: str
    device: str
    params: int
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    autocast_copies_bytes: int
    transient_bytes: int
    peak_bytes: int
    peak_phase: str
    blocks: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "input_size": size_to_json(self.input_size)}


def _plan(spec: Spec, input_size: InputSize, head: str, precision: str) -> _Plan:
    structure = describe(spec, input_size, head)
    act = FP32 if precision == "fp32" else 2
    params = tensors = buffers = matmul = largest = 0
    layers = list(structure.root.walk())
    calls = sorted(((call.order, layer, call) for layer in layers for call in layer.calls), key=lambda c: c[0])
    grads_at: dict[int, int] = {}
    for layer in layers:
        rule = OPERATORS.get(layer.kind)  # None: a container, which holds no parameter itself
        sizes = rule.parameters(layer.attrs) if rule else ()
        if sizes:
            params += sum(sizes)
            matmul += sizes[0] if rule.half_weight_copy else 0
            largest = max(largest, *sizes)
            tensors += len(sizes)
            buffers += rule.buffer_bytes(layer.attrs)
            live = [call.order for call in layer.calls]
            if live:
                grads_at[max(live)] = grads_at.get(max(live), 0) + sum(sizes) * FP32

    saved: dict[tuple, _Saved] = {}
    latest: dict[tuple, tuple] = {}  # shape -> key of the tensor last produced with that shape
    image = (3, *hw(input_size))
    latest[image] = ("image",)
    transient: dict[int, int] = {}

    def keep(key, per_image, order, unit, fixed=0):
        if key in saved:
            old = saved[key]
            saved[key] = _Saved(old.per_image, old.fixed, min(old.first_saver, order), old.unit)
        else:
            saved[key] = _Saved(per_image, fixed, order, unit)

    def source(shape):
        key = latest.get(tuple(shape), ("unknown", tuple(shape)))
        # Under autocast the fp32 image is cast once: the saved copy is a tensor of its own.
        return ("cast",) if key == ("image",) and act != FP32 else key

    for order, layer, call in calls:
        unit = unit_of(layer.name)
        rule = operator(call.op)
        if rule.saved is None:
            raise KeyError(f"{layer.name}: no rule for the tensors operator {call.op!r} saves")
        inputs = [tuple(shape) for shape in call.inputs]
        own = ("out", order)
        transient[order] = (sum(prod(s) for s in inputs) + prod(call.output)) * act
        for tag in rule.saved(layer.attrs):
            if tag == "inputs":
                for shape in inputs:
                    keep(source(shape), prod(shape) * act, order, unit)
            elif tag == "output":
                keep(own, prod(call.output) * act, order, unit)
            elif tag == "statistics":
                keep(("stats", order), 0, order, unit, fixed=2 * inputs[0][0] * FP32)
            else:  # indices of a max-pool
                keep(("indices", order), prod(call.output) * INT64, order, unit)
        if not rule.returns_input:
            latest[tuple(call.output)] = own
    return _Plan(params, tensors, buffers, matmul, largest, list(saved.values()), grads_at, transient,
                 [order for order, _, _ in calls])


_plans: dict = {}


def _cached_plan(spec: Spec, input_size: InputSize, head: str, precision: str) -> _Plan:
    key = (spec, input_size, head, precision)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = _plan(spec, input_size, head, precision)
        if len(_plans) > 64:
            _plans.pop(next(iter(_plans)))
    return plan


DEVICES = ("cuda", "cpu")


def check_options(batch: int, optimizer: str, precision: str, device: str = "cuda") -> None:
    """Raises ValueError with one line for an option out of range."""
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")


def estimate_training_memory(spec: Spec, input_size: InputSize | None = None, head: str = NO_HEAD, batch: int = 1,
                             optimizer: str = "sgd", precision: str = "fp32", device: str = "cuda") -> TrainingMemory:
    """Returns the estimated memory of one steady-state training step of `spec` with `head` at `input_size`
    pixels (default: the spec's), `batch` images, `optimizer` sgd (momentum) or adamw, `precision` fp32, or bf16 /
    fp16 autocast, on `device` 'cuda' or 'cpu' (only AdamW's step temporaries differ). Torch-free and
    allocation-free; raises ValueError for a bad option."""
    check_options(batch, optimizer, precision, device)
    input_size = normalize(input_size or spec.input_size)
    plan = _cached_plan(spec, input_size, head, precision)
    weights = plan.param_elements * FP32 + plan.buffer_bytes
    gradients = plan.param_elements * FP32
    states = 1 if optimizer == "sgd" else 2
    optimizer_bytes = states * plan.param_elements * FP32 + (plan.param_tensors * FP32 if optimizer == "adamw" else 0)
    copies = 2 * plan.matmul_weight_elements if precision != "fp32" else 0
    per_unit: dict[str, int] = {}
    for item in plan.saved:
        per_unit[item.unit] = per_unit.get(item.unit, 0) + item.per_image * batch + item.fixed
    activations = sum(per_unit.values()) + copies

    # Replay backward, last call first.
    resident = weights + optimizer_bytes
    release: dict[int, int] = {}
    for item in plan.saved:
        release[item.first_saver] = release.get(item.first_saver, 0) + item.per_image * batch + item.fixed
    live_saved, grads, peak, phase, transient_at_peak = activations, 0, resident + activations, "forward end", 0
    for order in reversed(plan.orders):
        grads += plan.grads_at.get(order, 0)
        now = resident + live_saved + grads + plan.transient[order] * batch
        if now > peak:
            peak, phase, transient_at_peak = now, "backward", plan.transient[order] * batch
        live_saved -= release.get(order, 0)
    if optimizer == "adamw":
        step_extra = plan.param_elements * FP32 if device == "cuda" else 2 * plan.largest_param_tensor * FP32
    else:
        step_extra = 0
    if resident + gradients + step_extra > peak:
        peak, phase, transient_at_peak = resident + gradients + step_extra, "optimizer step", step_extra
    params_per_unit: dict[str, int] = {}
    for layer in describe(spec, input_size, head).root.walk():
        params = layer_params(layer.kind, layer.attrs)
        if params:
            unit = unit_of(layer.name)
            params_per_unit[unit] = params_per_unit.get(unit, 0) + params
    units = list(dict.fromkeys([*per_unit, *params_per_unit]))
    blocks = [{"id": unit, "activations_bytes": per_unit.get(unit, 0), "params": params_per_unit.get(unit, 0)}
              for unit in units]
    return TrainingMemory(spec.name, head, input_size, batch, optimizer, precision, device, plan.param_elements, weights,
                          gradients, optimizer_bytes, activations, copies, transient_at_peak, peak, phase, blocks)


def max_batch(spec: Spec, budget_bytes: int, input_size: InputSize | None = None, head: str = NO_HEAD,
              optimizer: str = "sgd", precision: str = "fp32", device: str = "cuda", limit: int = 1 << 20) -> int:
    """Returns the largest batch whose estimated peak fits `budget_bytes` (0 when not even one image fits)."""
    def fits(batch: int) -> bool:
        return estimate_training_memory(spec, input_size, head, batch, optimizer, precision, device).peak_bytes \
            <= budget_bytes
    if not fits(1):
        return 0
    low, high = 1, 2
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low

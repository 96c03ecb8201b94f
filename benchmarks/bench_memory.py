"""Training memory: how fast is the estimate, and how far is it from real steps and from torch's own tooling?

1. Speed: `estimate_training_memory` for SpineNet-49 + RetinaNet at 640, batch 8 (cold: structure not cached;
   warm), against the 2 s target.
2. Activations kept for backward: the estimate vs the tensors autograd saves in one forward pass of the real
   module on the meta device (saved_tensors_hooks, each storage once).
3. Peak: the estimate vs a real training step on this CPU (resident tensors + peak RSS growth), small sizes.
4. torch's FakeTensorMode with its MemTracker (torch.distributed._tools.mem_tracker) on the same small step, with
   its time, as a cross-check of the peak that allocates nothing either.

    .venv/bin/python benchmarks/bench_memory.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

MIB = 2 ** 20
SMALL = [("spinenet-49s", "retinanet", 128, 2, "sgd", "fp32"), ("spinenet-49s", "retinanet", 128, 2, "sgd", "bf16"),
         ("resnet50-fpn", "none", 128, 2, "adamw", "fp32"), ("spinenet-mobile-49xs", "classification", 128, 2,
                                                              "sgd", "fp32"),
         ("spinenet-49", "retinanet", 256, 2, "adamw", "fp32")]


def fake_tensor_peak(name, head, size, batch, optimizer):
    """Peak bytes of one training step under FakeTensorMode, by torch's MemTracker; None when unavailable."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    from spinescope.analysis.memory.measure import training_step
    from spinescope.spinenet.build import build_model
    from spinescope.spinenet.builtins import load_builtin

    with FakeTensorMode():
        model = build_model(load_builtin(name), head, size).train()
        opt = (torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) if optimizer == "sgd"
               else torch.optim.AdamW(model.parameters(), lr=1e-4))
        images = torch.randn(batch, 3, size, size)
        step = training_step(model, images, opt, "fp32", torch.device("cpu"))
        step()
        tracker = MemTracker()
        tracker.track_external(model, opt)
        with tracker:
            step()
        return tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]


def main() -> None:
    from spinescope.analysis.memory.estimate import estimate_training_memory
    from spinescope.analysis.memory.measure import measure_in_subprocess
    from memory.test_estimate import saved_for_backward
    from spinescope.spinenet.builtins import load_builtin
    from spinescope.spinenet.describe import clear_cache

    spec = load_builtin("spinenet-49")
    clear_cache()
    started = time.perf_counter()
    estimate = estimate_training_memory(spec, 640, "retinanet", 8)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(20):
        started = time.perf_counter()
        estimate_training_memory(spec, 640, "retinanet", 8, "adamw", "bf16")
        warm.append(time.perf_counter() - started)
    print(f"SpineNet-49 + RetinaNet at 640, batch 8, SGD fp32: peak {estimate.peak_bytes / 2**30:.2f} GiB; "
          f"estimate time cold {cold * 1e3:.1f} ms, warm (median of 20) {statistics.median(warm) * 1e3:.2f} ms "
          "(target < 2 s)")

    print(f"\n{'model':22s} {'head':14s} {'in':>4s} {'b':>2s} {'opt':5s} {'prec':4s} {'saved est':>10s} "
          f"{'autograd':>9s} {'err':>6s} {'peak est':>9s} {'peak RSS':>9s} {'err':>6s} {'fake+tracker':>12s} "
          f"{'err':>6s} {'tracker s':>9s}")
    for name, head, size, batch, optimizer, precision in SMALL:
        est = estimate_training_memory(load_builtin(name), size, head, batch, optimizer, precision, device="cpu")
        saved = saved_for_backward(name, head, size, batch) if precision == "fp32" else None
        real = measure_in_subprocess(spec=name, input_size=size, head=head, batch=batch, optimizer=optimizer,
                                     precision=precision, device="cpu", threads=1)
        fake, fake_s = None, None
        if precision == "fp32":
            started = time.perf_counter()
            try:
                fake = fake_tensor_peak(name, head, size, batch, optimizer)
            except Exception as error:  # noqa: BLE001 - a cross-check; report why it did not run
                print(f"  (FakeTensorMode + MemTracker failed: {type(error).__name__}: {str(error)[:100]})")
            fake_s = time.perf_counter() - started
        cells = [f"{est.activations_bytes / MIB:9.1f}M",
                 f"{saved / MIB:8.1f}M" if saved else f"{'-':>9s}",
                 f"{100 * (est.activations_bytes / saved - 1):+5.1f}%" if saved else f"{'-':>6s}",
                 f"{est.peak_bytes / MIB:8.1f}M", f"{real['peak_bytes'] / MIB:8.1f}M",
                 f"{100 * (est.peak_bytes / real['peak_bytes'] - 1):+5.1f}%",
                 f"{fake / MIB:11.1f}M" if fake else f"{'-':>12s}",
                 f"{100 * (est.peak_bytes / fake - 1):+5.1f}%" if fake else f"{'-':>6s}",
                 f"{fake_s:9.1f}" if fake_s else f"{'-':>9s}"]
        print(f"{name:22s} {head:14s} {size:4d} {batch:2d} {optimizer:5s} {precision:4s} " + " ".join(cells))
    print("err = estimate / measured - 1; M = MiB; peak RSS = weights, optimizer state and input + peak RSS growth "
          "of the second training step")


if __name__ == "__main__":
    main()

"""One real training step and its peak memory, to check `analysis.memory.estimate` against.

The step: model in train mode with random weights, SGD with momentum 0.9 or AdamW, a random input, loss = the sum
of the means of every output, `loss.backward()`, `optimizer.step()`, `zero_grad(set_to_none=True)`; fp32 or
autocast (bf16, or fp16 on a GPU). One step runs first so that the optimizer state exists (the steady state the
estimate describes); the second is measured:

- on a GPU: `torch.cuda.max_memory_allocated` (the caching allocator's peak of tensor bytes, absolute);
- on the CPU: the weights, buffers, optimizer state and input (exact tensor bytes, resident before the step) plus
  the peak resident-set growth during the step (VmHWM reset through /proc/self/clear_refs after malloc_trim,
  as the latency worker measures). The RSS includes the CPU allocator's own overhead (glibc arenas,
  oneDNN scratch space), which no tensor count sees.

Run it in a fresh process for a clean resident set: `spinescope.memory.measure '{"spec": "spinenet-49s",
"input_size": 64, "batch": 2, ...}'` prints one JSON object (`measure_in_subprocess` does this).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from spinescope import PACKAGE_PARENT
from spinescope.spinenet.input_size import InputSize, hw

ROOT = PACKAGE_PARENT


def _state_bytes(optimizer) -> int:
    import torch

    return sum(value.numel() * value.element_size() for state in optimizer.state.values()
               for value in state.values() if isinstance(value, torch.Tensor))


def training_step(model, images, optimizer, precision: str, device):
    """Returns a no-argument callable running one training step."""
    import torch
    from torch.utils._pytree import tree_flatten

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)

    def step():
        if dtype is None:
            outputs = model(images)
        else:
            with torch.autocast(device.type, dtype=dtype):
                outputs = model(images)
        loss = sum(output.float().mean() for output in tree_flatten(outputs)[0])
        del outputs
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def measure_training_step(spec: str, input_size: InputSize, head: str = "none", batch: int = 1,
                          optimizer: str = "sgd", precision: str = "fp32", device: str = "cpu",
                          threads: int | None = 1, seed: int = 0) -> dict:
    """Runs two training steps in this process and returns the measured figures of the second (bytes). Raises
    ResourceLimitError before building the model when the step would exceed the memory or time limits."""
    import torch

    from spinescope.analysis.latency.worker import CpuMemoryProbe
    from spinescope.analysis.limits import check_training_step
    from spinescope.spinenet.build import build_model
    from spinescope.spinenet.builtins import load_builtin

    check_training_step(load_builtin(spec), input_size, head, batch, optimizer, precision, device)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    device = torch.device(device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    model = build_model(load_builtin(spec), head, input_size, device=device).train()
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, *hw(input_size), device=device)
    step = training_step(model, images, opt, precision, device)
    step()  # creates the optimizer state
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    resident = weights + _state_bytes(opt) + images.numel() * images.element_size()
    figures = {"spec": spec, "input_size": input_size, "head": head, "batch": batch, "optimizer": optimizer,
               "precision": precision, "device": device.type, "torch_version": torch.__version__,
               "weights_bytes": weights, "optimizer_bytes": _state_bytes(opt),
               "input_bytes": images.numel() * images.element_size()}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        figures["before_bytes"] = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        figures["peak_bytes"] = torch.cuda.max_memory_allocated(device)
        figures["method"] = "torch.cuda.max_memory_allocated"
        return figures
    growth = CpuMemoryProbe().measure(step)
    figures["rss_growth_bytes"] = growth
    figures["peak_bytes"] = resident + growth
    figures["method"] = "resident tensors + peak RSS growth (VmHWM)"
    return figures


def measure_in_subprocess(timeout: float = 600, **options) -> dict:
    """`measure_training_step(**options)` in a fresh Python process (clean resident set); returns its figures.
    Raises ResourceLimitError before starting the process when the step would exceed the memory or time limits
    (`analysis.limits.check_training_step`), RuntimeError with the last line of its stderr when it fails."""
    from spinescope.analysis.limits import check_training_step
    from spinescope.spinenet.builtins import load_builtin

    check_training_step(load_builtin(options["spec"]), options["input_size"],
                        **{name: options[name] for name in ("head", "batch", "optimizer", "precision", "device")
                           if name in options})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "spinescope.analysis.memory.measure", json.dumps(options)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"training-step measurement failed: {lines[-1] if lines else run.returncode}")
    return json.loads(run.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure_training_step(**json.loads(sys.argv[1]))))

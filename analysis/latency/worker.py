"""The latency worker: a separate process (`spinescope.latency.worker`) that builds the models and times
them, so that a crash, an out-of-memory error or a hang never takes the caller down. Its caller's side (spawn,
time limit, kill) is `analysis.latency.worker_process`.

Protocol: one JSON object on stdin (`analysis.latency.request.worker_payload`), JSON lines out on the original
stdout (events: ready, progress, built, result, error; the result is read by `analysis.latency.results`); anything
else the process prints goes to stderr. Exit status 0 after a result, 1 after an error event.

Timing: one call = one forward pass of the whole batch under `torch.inference_mode()`. On a GPU each call is
bracketed by CUDA events after a device synchronisation and waits for its end event, so no call overlaps the
next; on the CPU `time.perf_counter` (monotonic) brackets it. Models are timed interleaved (A B A B ...).
Per block (`per_block` in the payload): every timed unit of the model (the stem, each graph node's module
`backbone.blocks.<id>` with its resampling and block group, the endpoints, the head; see `timed_units`) gets a
forward pre-hook and a forward hook. On a GPU they record CUDA events (read after the pass's end event has
synchronised, so no hook waits for the device); on the CPU, where operators run synchronously, they read
`time.perf_counter`. Each iteration times one pass without hooks and one with hooks attached (alternating which
goes first), so the end-to-end median without hooks, the hooked pass's median (the hooks' overhead) and the
per-unit samples come from the same run, interleaved with the other models.
Memory: peak = the model's weights and buffers (exact) + the growth during one forward pass after warm-up:
`torch.cuda.max_memory_allocated` on a GPU, the peak resident set size (VmHWM, reset through
/proc/self/clear_refs) on Linux CPUs, `ru_maxrss` elsewhere (which only grows: a later, smaller model reads 0).
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import platform
import re
import resource
import signal
import sys
import time
import traceback

from spinescope.spinenet.input_size import hw, normalize

# Test hook: makes the worker die or fail in a chosen way once measuring starts (see tests/latency/test_job.py).
FAULT_VARIABLE = "SPINESCOPE_LATENCY_FAULT"
PROGRESS_INTERVAL_S = 0.1


class Emitter:
    """Writes protocol events as JSON lines on a private copy of stdout; fd 1 then points at stderr so that
    stray prints from libraries cannot corrupt the protocol."""

    def __init__(self):
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def __call__(self, event: str, **fields) -> None:
        self._out.write(json.dumps({"event": event, **fields}) + "\n")
        self._out.flush()


class WorkerFailure(Exception):
    """A failure with a one-line message and a kind: 'memory' (refused), 'oom' or 'error'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _load_average() -> float | None:
    """Returns the 1-minute load average (runnable tasks) before this worker's own work, or None where unknown."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def cpu_name() -> str:
    """Returns the CPU model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _linux_status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class CpuMemoryProbe:
    """Peak resident-set growth (bytes) around a call. Free heap memory is handed back to the system first
    (glibc's malloc_trim), so memory the call reuses from earlier calls is faulted in again and counted."""

    def __init__(self):
        try:
            self._libc = ctypes.CDLL("libc.so.6")
            self._libc.malloc_trim
        except (OSError, AttributeError):
            self._libc = None
        self._resettable = self._reset_peak()

    def _reset_peak(self) -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # resets VmHWM to the current VmRSS (Linux >= 4.0)
            return _linux_status_bytes("VmHWM") is not None
        except OSError:
            return False

    def measure(self, call) -> int:
        gc.collect()
        if self._libc is not None:
            self._libc.malloc_trim(0)
        if self._resettable and self._reset_peak():
            before = _linux_status_bytes("VmRSS")
            call()
            return max(_linux_status_bytes("VmHWM") - before, 0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        call()
        return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before, 0)


class CudaMemoryProbe:
    """Peak growth of CUDA memory allocated by tensors (bytes) around a call."""

    def __init__(self, device):
        self.device = device

    def measure(self, call) -> int:
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        call()
        torch.cuda.synchronize(self.device)
        return max(torch.cuda.max_memory_allocated(self.device) - before, 0)


def make_timer(device):
    """Returns time_call(fn) -> milliseconds of one call of fn, measured right for the device."""
    import torch

    if device.type == "cuda":
        def time_call(fn) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
    else:
        def time_call(fn) -> float:
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e3
    return time_call


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_runner(model, images, precision: str, device):
    """Returns a no-argument callable running one forward pass in the requested precision."""
    import torch

    if precision == "fp32":
        return lambda: model(images)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]

    def run():
        with torch.autocast(device.type, dtype=dtype):
            return model(images)
    return run


def tensor_bytes(model) -> int:
    """Bytes of the model's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def check_cuda_fits(payload, device) -> None:
    """Refuses before instantiating when the estimate does not fit the GPU's free memory (or the limit)."""
    import torch

    free, total = torch.cuda.mem_get_info(device)
    available = free if payload.get("memory_limit_bytes") is None else min(free, payload["memory_limit_bytes"])
    needed = payload["estimated_bytes"]
    if needed > payload["memory_headroom"] * available:
        raise WorkerFailure("memory", f"estimated {needed / 2**20:,.0f} MiB needed but only {available / 2**20:,.0f} "
                                      f"MiB of GPU memory is free ({total / 2**20:,.0f} MiB in all); lower the batch "
                                      "or input size")


def timed_units(model) -> list[tuple[str, object]]:
    """Returns (id, module) for every unit timed per block, in forward order: each direct child of
    `model.backbone` by its name (`backbone.stem_conv`, `backbone.endpoints`), except `backbone.blocks`, whose
    children are the graph nodes (`backbone.blocks.b3`), then `head` when the model has one."""
    units = []
    for name, child in model.backbone.named_children():
        if name == "blocks":
            units.extend((f"backbone.blocks.{node}", block) for node, block in child.named_children())
        else:
            units.append((f"backbone.{name}", child))
    if getattr(model, "head", None) is not None:
        units.append(("head", model.head))
    return units


def invoked_modules(model, run) -> set[int]:
    """Returns the ids of the modules whose forward one pass of `run` invokes (a ModuleDict or ModuleList is never
    invoked itself; ResNet-FPN's P blocks are used through their submodules)."""
    invoked: set[int] = set()
    handles = [module.register_forward_pre_hook(lambda module, args: invoked.add(id(module)))
               for module in model.modules()]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return invoked


def hooked_modules(unit, invoked: set[int]) -> list:
    """The outermost invoked modules at or below `unit`: hooking them covers all of the unit's work once."""
    if id(unit) in invoked:
        return [unit]
    return [module for child in unit.children() for module in hooked_modules(child, invoked)]


class BlockTimer:
    """Times units of a model inside its forward pass through forward (pre-)hooks: attach(), run the pass,
    detach(), then collect() -> ms per unit for that pass (a unit made of several invoked modules sums them).
    CUDA events on a GPU (collect() after the pass has synchronised), `time.perf_counter` on the CPU."""

    def __init__(self, units: list[tuple[str, list]], device):
        self.ids = [unit_id for unit_id, _ in units]
        self._modules = [modules for _, modules in units]
        self._cuda = device.type == "cuda"
        self._handles: list = []
        self._open: list = [None] * len(units)
        self._spans: list[list] = [[] for _ in units]

    def _start(self, index: int, module, args) -> None:
        if self._cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self._open[index] = event
        else:
            self._open[index] = time.perf_counter()

    def _stop(self, index: int, module, args, output) -> None:
        if self._cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self._spans[index].append((self._open[index], event))
        else:
            self._spans[index].append((time.perf_counter() - self._open[index]) * 1e3)

    def attach(self) -> None:
        from functools import partial

        for spans in self._spans:
            spans.clear()
        for index, modules in enumerate(self._modules):
            for module in modules:
                self._handles.append(module.register_forward_pre_hook(partial(self._start, index)))
                self._handles.append(module.register_forward_hook(partial(self._stop, index)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def collect(self) -> list[float]:
        """Milliseconds per unit of the last pass (call after the pass has finished on the device)."""
        if self._cuda:
            return [sum(start.elapsed_time(end) for start, end in spans) for spans in self._spans]
        return [sum(spans) for spans in self._spans]


def make_block_timer(model, run, device) -> BlockTimer:
    """A BlockTimer for the timed units of `model`, hooking what one probe pass of `run` shows is invoked."""
    invoked = invoked_modules(model, run)
    synchronize(device)
    units = [(unit_id, hooked_modules(module, invoked)) for unit_id, module in timed_units(model)]
    return BlockTimer(units, device)


def apply_fault(stage: str) -> None:
    """Test hook: at `stage` 'measure', kills the worker (SIGKILL), exits abruptly, runs out of memory or hangs."""
    fault = os.environ.get(FAULT_VARIABLE, "")
    if stage != "measure" or not fault:
        return
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == "exit":
        os._exit(3)
    elif fault == "hang":
        time.sleep(3600)
    elif fault == "oom":
        import torch

        torch.empty(1 << 50, dtype=torch.uint8)  # 1 PiB: a real allocation failure


def measure(payload: dict, emit: Emitter) -> None:
    """Builds every model, warms them up, measures memory and times them interleaved; emits a result event."""
    import torch

    device = torch.device(payload["device"])
    if payload.get("threads"):
        torch.set_num_threads(payload["threads"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels in warm-up
        device_name = torch.cuda.get_device_name(device)
        probe = CudaMemoryProbe(device)
    else:
        # Random weights through deep stacks shrink activations into denormals, which run many times slower
        # on x86 CPUs than normal floats; real trained models do not hit that path.
        torch.set_flush_denormal(True)
        device_name = cpu_name()
        probe = CpuMemoryProbe()
    environment = {"torch_version": torch.__version__, "device_name": device_name, "threads": torch.get_num_threads(),
                   "python": platform.python_version(), "platform": platform.platform()}
    if device.type == "cpu":  # what the time estimate needs to bring this run's rate to an idle machine
        environment.update(cores=os.cpu_count(), load_average=_load_average())
    if device.type == "cuda":
        environment.update(cuda_version=torch.version.cuda, cudnn_version=torch.backends.cudnn.version(),
                           cudnn_tf32=torch.backends.cudnn.allow_tf32)
    emit("ready", environment=environment, time=time.time())
    if device.type == "cuda":
        check_cuda_fits(payload, device)

    iters, warmup = payload["iters"], payload["warmup"]
    per_block = bool(payload.get("per_block"))
    runners, figures, timers = [], [], []
    with torch.inference_mode():
        for index, request in enumerate(payload["models"]):
            emit("progress", phase="build", done=index, total=len(payload["models"]), model=request["label"])
            run, figure, model = build_runner(request, device, emit)
            runners.append(run)
            figures.append(figure)
            if per_block:
                timers.append(make_block_timer(model, run, device))
                figure["block_ids"] = timers[-1].ids
            del model

        started = time.perf_counter()
        for done in range(warmup):
            emit("progress", phase="warmup", done=done, total=warmup, model=None)
            for run in runners:
                run()
                synchronize(device)
        warmup_s = time.perf_counter() - started

        for run, figure in zip(runners, figures):
            figure["activation_bytes"] = probe.measure(run)

        apply_fault("measure")
        started = time.perf_counter()
        if per_block:
            for figure in figures:
                figure["hooked_samples_ms"], figure["block_samples_ms"] = [], []
            order = time_interleaved_per_block(runners, timers, figures, iters, make_timer(device), emit)
        else:
            order = time_interleaved(runners, [figure["samples_ms"] for figure in figures], iters,
                                     make_timer(device), emit)
        measure_s = time.perf_counter() - started

    emit("result", models=figures, order=order, environment=environment,
         phases={"warmup_s": warmup_s, "measure_s": measure_s})


def build_runner(request: dict, device, emit: Emitter):
    """Instantiates one requested model on `device` (random weights, eval mode, options applied) and its input;
    compiles it if asked (timing the compiling first call). Returns (runner, figures so far)."""
    import torch

    from spinescope.analysis.latency.bn_fold import count_batch_norms, fold_batch_norms
    from spinescope.spinenet.build import build_model
    from spinescope.spinenet.spec import spec_from_dict

    started = time.perf_counter()
    size, batch = normalize(request["input_size"]), request["batch"]
    model = build_model(spec_from_dict(request["spec"]), request["head"], size, device=device)
    folded = fold_batch_norms(model) if request["fold_bn"] else 0
    memory_format = torch.channels_last if request["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    images = torch.randn(batch, 3, *hw(size), device=device).contiguous(memory_format=memory_format)
    synchronize(device)
    build_s = time.perf_counter() - started
    compile_s = None
    if request["compile"]:
        emit("progress", phase="compile", done=0, total=1, model=request["label"])
        started = time.perf_counter()
        model = torch.compile(model)
        make_runner(model, images, request["precision"], device)()  # compilation happens on this first call
        synchronize(device)
        compile_s = time.perf_counter() - started
    emit("built", model=request["label"], build_s=build_s, compile_s=compile_s)
    figure = {"label": request["label"], "build_s": build_s, "compile_s": compile_s,
              "weight_bytes": tensor_bytes(model), "bn_folded": folded, "bn_remaining": count_batch_norms(model),
              "samples_ms": []}
    return make_runner(model, images, request["precision"], device), figure, model


def _interleave(models: int, iters: int, turn, emit: Emitter) -> list[int]:
    """Runs `turn(iteration, index)` for `iters` rounds over `models` models, in order A B A B ..., reporting
    progress at most every PROGRESS_INTERVAL_S. Returns the model indices in the order they were timed."""
    total = iters * models
    order: list[int] = []
    last_emit = time.perf_counter()
    emit("progress", phase="measure", done=0, total=total, model=None)
    for iteration in range(iters):
        for index in range(models):
            turn(iteration, index)
            order.append(index)
        now = time.perf_counter()
        if now - last_emit >= PROGRESS_INTERVAL_S:
            emit("progress", phase="measure", done=len(order), total=total, model=None)
            last_emit = now
    emit("progress", phase="measure", done=total, total=total, model=None)
    return order


def time_interleaved(runners, samples: list[list[float]], iters: int, time_call, emit: Emitter) -> list[int]:
    """Times `iters` rounds of one call per runner, in order A B A B ..., appending ms to `samples[i]`. Returns the
    runner indices in the order they were timed."""
    def turn(iteration: int, index: int) -> None:
        samples[index].append(time_call(runners[index]))

    return _interleave(len(runners), iters, turn, emit)


def time_interleaved_per_block(runners, timers: list[BlockTimer], figures: list[dict], iters: int, time_call,
                               emit: Emitter) -> list[int]:
    """Like `time_interleaved`, but each model's turn is two passes, one without hooks (appended to
    `samples_ms`) and one with its BlockTimer attached (end to end to `hooked_samples_ms`, per unit to
    `block_samples_ms`, one list of ms per pass in the order of the timer's ids); which of the two goes first
    alternates from one iteration to the next. Returns the runner indices in the order they were timed."""
    def turn(iteration: int, index: int) -> None:
        run, timer, figure = runners[index], timers[index], figures[index]
        for hooked in ((False, True) if iteration % 2 == 0 else (True, False)):
            if hooked:
                timer.attach()
                try:
                    figure["hooked_samples_ms"].append(time_call(run))
                finally:
                    timer.detach()
                figure["block_samples_ms"].append(timer.collect())
            else:
                figure["samples_ms"].append(time_call(run))

    return _interleave(len(runners), iters, turn, emit)


def is_out_of_memory(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or any(
        marker in text for marker in ("out of memory", "can't allocate memory", "cannot allocate memory"))


def oom_message(error: BaseException) -> str:
    """One line for an allocation failure, with the size it tried to allocate when the message says."""
    text = str(error)
    match = re.search(r"tried to allocate (\d+) bytes", text)  # the CPU allocator
    if match:
        return f"out of memory: tried to allocate {int(match.group(1)) / 2**20:,.0f} MiB"
    match = re.search(r"CUDA out of memory\. Tried to allocate ([\d.]+ \w+)", text)
    if match:
        return f"out of GPU memory: tried to allocate {match.group(1)}; lower the batch or input size"
    return f"out of memory: {first_line(error)}"


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def exit_with_parent() -> None:
    """Ends this worker if the process that started it goes away (nobody would read the result)."""
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> int:
    emit = Emitter()
    exit_with_parent()
    try:
        # Import first: the caller estimates memory while this runs, then sends the payload.
        import torch  # noqa: F401

        import spinescope.spinenet.build  # noqa: F401

        payload = json.loads(sys.stdin.read())
        measure(payload, emit)
        return 0
    except WorkerFailure as failure:
        emit("error", kind=failure.kind, message=str(failure))
    except BaseException as error:  # noqa: BLE001 - every failure must reach the caller as one line
        if is_out_of_memory(error):
            emit("error", kind="oom", message=oom_message(error))
        else:
            traceback.print_exc(file=sys.stderr)
            emit("error", kind="error", message=f"{type(error).__name__}: {first_line(error)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

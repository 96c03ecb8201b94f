"""Code that runs inside the latency worker process: CPU name, one-line out-of-memory messages."""
from spinescope.analysis.latency.worker import cpu_name, oom_message


def test_cpu_name_from_proc_cpuinfo():
    model_names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    assert cpu_name() == model_names[0]


def test_out_of_memory_messages_are_one_line():
    # The messages of PyTorch's CUDA caching allocator and CPU allocator, as they read.
    cuda = RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 79.19 GiB "
                        "of which 3.06 MiB is free. Including non-PyTorch memory, this process has 79.18 GiB memory "
                        "in use.")
    assert oom_message(cuda) == "out of GPU memory: tried to allocate 20.00 MiB; lower the batch or input size"
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you "
                       "tried to allocate 3221225472 bytes. Error code 12 (Cannot allocate memory)")
    assert oom_message(cpu) == "out of memory: tried to allocate 3,072 MiB"

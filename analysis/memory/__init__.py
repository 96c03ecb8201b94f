"""Training memory: the peak of one training step estimated from the structure, and measured for real.

    estimate.py  estimate_training_memory(...): weights, gradients, optimizer state, activations kept for backward
                 (per block), peak; max_batch(...) for a memory budget. torch-free, no tensor allocated.
    measure.py   one real training step (forward, backward, optimizer step) and its peak memory: the allocator's
                 (CUDA max_memory_allocated) or the resident-set growth (CPU); `spinescope.memory.measure`
    cli.py       `spinescope memory SPEC ...`
"""

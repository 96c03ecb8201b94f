"""fvcore's own numbers: trace a real CPU instantiation of the model (seconds to minutes). The reference that
`analysis.counting.fast` must equal, module for module."""
from __future__ import annotations

import warnings

from spinescope.extras import require
from spinescope.analysis.counting.fast import ModelCounts, count_model
from spinescope.analysis.limits import check_fvcore_request
from spinescope.spinenet.input_size import InputSize, hw
from spinescope.spinenet.registry import NO_HEAD
from spinescope.spinenet.spec import Spec


def count_params(module) -> int:
    """Returns the number of trainable parameters of torch module `module` (0 for None)."""
    return 0 if module is None else sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_with_fvcore(spec: Spec, input_size: InputSize | None = None, head: str = NO_HEAD, num_classes: int = 1000,
                      pooling: str = "gap") -> ModelCounts:
    """Returns per-module counts and params measured by fvcore tracing a real CPU instantiation (zero weights and
    input, batch 1; values do not change counts, and skipping random initialisation saves seconds): slow (seconds
    to minutes), the reference that `analysis.counting.fast` must equal. Raises ResourceLimitError before building
    anything when the trace would exceed the memory or time limits (`analysis.limits`)."""
    import torch

    FlopCountAnalysis = require("fvcore.nn").FlopCountAnalysis

    from spinescope.spinenet.build import build_model

    input_size = input_size or spec.input_size
    check_fvcore_request(spec, input_size, head, count_model(spec, input_size, head, num_classes, pooling).macs(""))
    model = build_model(spec, head, input_size, device="meta", num_classes=num_classes, pooling=pooling)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.zero_()
    images = torch.zeros(1, 3, *hw(input_size))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        flops = FlopCountAnalysis(model, images)
        flops.unsupported_ops_warnings(False)
        flops.uncalled_modules_warnings(False)
        flops.tracer_warnings("none")
        by_module = flops.by_module_and_operator()
        names = list(by_module)
        uncounted = {name: dict(flops.unsupported_ops(name)) for name in names}
    modules = dict(model.named_modules())
    return ModelCounts(ops={name: {op: int(n) for op, n in by_module[name].items()} for name in names},
                       uncounted=uncounted, params={name: count_params(modules[name]) for name in names})

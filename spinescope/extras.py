"""Optional dependencies by use: the core (specs, structure, counts, modules) needs torch and a few small packages;
everything else comes with an extra, `pip install 'spinescope[EXTRA]'`."""
from __future__ import annotations

import warnings
from importlib import import_module
from types import ModuleType

# module -> the extra that installs it (pyproject.toml's [project.optional-dependencies])
EXTRA_OF = {"torchvision": "detection", "streamlit": "app", "plotly": "app", "pandas": "app", "kaleido": "app",
            "fvcore": "verify", "onnx": "onnx", "onnxruntime": "onnx", "ray": "ray", "tensorflow": "tf",
            "official": "tf"}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it (one line)."""


def require(module: str) -> ModuleType:
    """Returns the imported `module`, or raises MissingExtra: "fvcore is not installed: pip install
    'spinescope[verify]'"."""
    try:
        with warnings.catch_warnings():
            # fvcore scripts a function with torch.jit.script on import, which torch 2.14 deprecates with a
            # FutureWarning on stderr: not the user's concern, and a CLI's error must stay one line.
            warnings.simplefilter("ignore", FutureWarning)
            return import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingExtra(f"{top} is not installed: pip install 'spinescope[{EXTRA_OF.get(top, 'all')}]'") from None

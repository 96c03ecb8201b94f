"""Optional dependencies by use: the core (specs, structure, counts, modules) needs torch and a few small packages;
everything else comes with an extra, `pip install 'spinescope[EXTRA]'`."""
from __future__ import annotations

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
        return import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingExtra(f"{top} is not installed: pip install 'spinescope[{EXTRA_OF.get(top, 'all')}]'") from None

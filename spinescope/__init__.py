"""SpineScope: scale-permuted (SpineNet) and scale-decreased (ResNet-FPN) backbones as plain-data specs, with exact
counts, PyTorch modules, torchvision detectors and an app. One import name; its parts are subpackages:

    spinescope.spinenet    specs, validation, structure, PyTorch modules
    spinescope.analysis    counting, receptive fields, latency, memory, sweeps, comparison, the CLI
    spinescope.app         the Streamlit app (`spinescope app`)
    spinescope.detection   torchvision's RetinaNet and FCOS with a SpineScope backbone

    import spinescope
    backbone = spinescope.create_backbone("spinenet-49")        # or a path, or a Spec (e.g. after spinenet.edits)
    features = backbone(images)                                 # {"P3": tensor, ..., "P7": tensor}
    backbone.feature_info.channels()                            # [256, 256, 256, 256, 256] (timm's feature_info)
    model = spinescope.create_model("spinenet-49s", head="classification", num_classes=10, pooling="spp")

The API is imported on first use, so `import spinescope.spinenet.spec` does not load torch.
"""
from importlib import import_module
from pathlib import Path

# Installed, the parts live inside this folder. In a checkout of the repository they are its top-level folders
# (spinenet/, analysis/, app/, assets/) beside this one, so the package's path takes in the repository root.
_HERE = Path(__file__).resolve().parent
if not (_HERE / "spinenet").is_dir() and (_HERE.parent / "pyproject.toml").is_file():
    __path__.append(str(_HERE.parent))  # noqa: F821 - the package's own __path__
CHECKOUT = len(__path__) > 1  # noqa: F821
# What a child process needs on PYTHONPATH to import spinescope: the repository root, or site-packages.
PACKAGE_PARENT = _HERE.parent

__version__ = "0.2.0"  # the package's version (pyproject.toml reads it from here)

_API = {"Backbone": "api", "Classifier": "api", "FeatureInfo": "api", "ShapeSpec": "api", "create_backbone": "api",
        "create_model": "api", "load_spec": "api", "export_onnx": "onnx_export", "SpecError": "spinenet.validate",
        "detection": None}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'spinescope' has no attribute {name!r}")
    module = import_module(f"spinescope.{_API[name] or name}")
    return module if _API[name] is None else getattr(module, name)

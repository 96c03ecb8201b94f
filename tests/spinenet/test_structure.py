"""The module is the description: every built module's name, kind and params come from `spinenet.describe`, and
the descriptions's shapes are the shapes the real forward pass produces."""
import pytest
import torch

from spinescope.spinenet.operators import layer_params
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.describe import describe
from spinescope.spinenet.registry import head_names
from spinescope.spinenet.structure import Describer
from spinescope.spinenet.validate import parse_spec

TORCH_KINDS = {"conv": torch.nn.Conv2d, "batch_norm": torch.nn.BatchNorm2d, "linear": torch.nn.Linear,
               "adaptive_avg_pool": torch.nn.AdaptiveAvgPool2d, "adaptive_max_pool": torch.nn.AdaptiveMaxPool2d,
               "identity": torch.nn.Identity,
               "sequential": torch.nn.Sequential, "list": torch.nn.ModuleList, "dict": torch.nn.ModuleDict}


@pytest.mark.parametrize("name", BUILTIN_NAMES)
@pytest.mark.parametrize("head", head_names())
def test_built_modules_are_the_described_layers(name, head):
    spec = load_builtin(name)
    structure = describe(spec, 160, head)
    model = build_model(spec, head, 160, device="meta")
    modules = dict(model.named_modules())
    layers = list(structure.root.walk())
    assert list(modules) == [layer.name for layer in layers]
    for layer in layers:
        module = modules[layer.name]
        if layer.kind in TORCH_KINDS:
            assert isinstance(module, TORCH_KINDS[layer.kind]), layer.name
        own = sum(p.numel() for p in module.parameters(recurse=False))
        assert own == layer_params(layer.kind, layer.attrs), layer.name


def test_described_shapes_are_the_real_forward_shapes():
    """Every call of every leaf module: the shapes recorded in the description equal the ones a real forward pass
    (odd input size, every head option) feeds it."""
    spec = load_builtin("spinenet-mobile-49xs")
    for head in head_names():
        structure = describe(spec, 97, head)
        model = build_model(spec, head, 97)
        seen = {}

        def record(module, inputs, output, name=None):
            seen.setdefault(name, []).append((tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))

        for module_name, module in model.named_modules():
            if not list(module.children()) and module_name:
                module.register_forward_hook(lambda m, i, o, name=module_name: record(m, i, o, name))
        with torch.no_grad():
            model(torch.zeros(1, 3, 97, 97))
        for layer in structure.root.walk():
            if layer.name in seen:
                described = [(call.inputs[0], call.output) for call in layer.calls]
                real = [(tuple(i if len(i) == 3 else (i[0], 1, 1)), tuple(o if len(o) == 3 else (o[0], 1, 1)))
                        for i, o in seen[layer.name]]
                assert described == real, layer.name


def test_a_kind_without_module_class_is_refused_when_built():
    from spinescope.spinenet.modules import instantiate

    d = Describer()
    with d.module("backbone", "no_such_block"):
        d.conv("0", 3, 8, 3, (3, 32, 32))
    with pytest.raises(ValueError, match="no_such_block"):
        with torch.device("meta"):
            instantiate(d.root)


def test_a_module_class_building_other_children_than_its_layer_is_refused():
    from spinescope.spinenet.containers import MODULE_CLASSES, FORWARDS, DescribedModule, child
    from spinescope.spinenet.modules import instantiate

    class Swapped(DescribedModule):
        kind = "swapped_children"

        def __init__(self, layer):
            super().__init__()
            self.second = child(layer, "second")
            self.first = child(layer, "first")

    try:
        d = Describer()
        with d.module("backbone", "swapped_children"):
            d.conv("first", 3, 8, 3, (3, 32, 32))
            d.conv("second", 8, 8, 3, (8, 32, 32))
        with pytest.raises(ValueError, match=r"builds children \['second', 'first'\]"):
            with torch.device("meta"):
                instantiate(d.root)
    finally:
        del MODULE_CLASSES["swapped_children"], FORWARDS["swapped_children"]


def _spec(name):
    if name == "resnet":
        return parse_spec({"name": "tiny", "family": "resnet", "stages": [1, 1, 1, 1], "min_level": 5,
                           "max_level": 5})
    return load_builtin(name)


@pytest.mark.parametrize("name", ["spinenet-49s", "spinenet-mobile-49s", "resnet50-fpn", "resnet"])
def test_every_container_kind_is_a_class_written_in_the_source(name):
    """Every container a built-in describes (RetinaNet's aside: it registers its forwards alone) is built by a class
    statement `class Name(DescribedModule)` with `kind = "<its kind>"`, read from the package's files with ast."""
    import ast
    from pathlib import Path

    written = {}
    for path in (Path(__file__).resolve().parents[2] / "spinenet").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(base, "id", "") == "DescribedModule"
                                                      for base in node.bases):
                kinds = [statement.value.value for statement in node.body if isinstance(statement, ast.Assign)
                         and [t.id for t in statement.targets] == ["kind"]]
                written[kinds[0]] = node.name
    structure = describe(_spec(name), 64, "classification")
    containers = {layer.kind for layer in structure.root.walk()
                  if layer.children and layer.kind not in TORCH_KINDS and layer.kind != "conv_bn_act"}
    assert containers and containers <= set(written)
    for module_name, module in build_model(_spec(name), "classification", 64, device="meta").named_modules():
        kind = structure.layer(module_name).kind
        if kind in containers:
            assert type(module).__name__ == written[kind]
            assert type(module).__module__.endswith(".modules")

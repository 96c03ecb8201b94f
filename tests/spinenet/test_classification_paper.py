"""The paper's classification rows: ResNet's own classifier (family 'resnet': trunk, global average pooling of C5,
one linear layer) against torchvision's published parameter counts and a hand count of MACs; SpineNet with the
classification head against the independent reference count; `analysis paper` shows them beside the zoo's
figures (ImageNet and iNaturalist)."""
import math

import pytest
import torch

from spinescope.analysis.comparison.published import classification_rows, inaturalist_classes
from spinescope.analysis.comparison.report import IMAGENET_CLASSES, classification_spec, paper_table
from spinescope.analysis.counting import analyze, count_params, count_with_fvcore
from spinescope.analysis.counting.fast import count_differences, count_model
from reference_counts import Tally, _bottleneck, side, spinenet_counts
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.describe import describe
from spinescope.spinenet.operators import layer_params
from spinescope.spinenet.validate import find_problems

# torchvision's weight metadata (reference page, section 10): resnet with its 1000-class fc layer.
TORCHVISION = {"ResNet-50": 25_557_032, "ResNet-101": 44_549_160, "ResNet-152": 60_192_808}
STAGES = {"ResNet-50": (3, 4, 6, 3), "ResNet-101": (3, 4, 23, 3), "ResNet-152": (3, 8, 36, 3)}
SPINENET_ENDPOINTS = {"spinenet-49": 256, "spinenet-96": 256, "spinenet-143": 256, "spinenet-190": 512}


def resnet_spec(name: str, size: int = 224):
    return classification_spec({"model": name, "family": "resnet", "stages": list(STAGES[name]), "input_size": size})


def resnet_classifier_by_hand(name: str, size: int, classes: int) -> tuple[int, int]:
    """(params, MACs): 7x7/2 stem conv, bottleneck stages (stride on the 3x3 of each stage's first block), then
    fc 2048 -> classes (global average pooling has no MACs)."""
    t = Tally()
    t.conv(3, 64, 7, side(size, 1))
    cin = 64
    for stage, (count, width) in enumerate(zip(STAGES[name], (64, 128, 256, 512))):
        level = stage + 2
        for index in range(count):
            s_in = side(size, level - 1) if index == 0 and level > 2 else side(size, level)
            cin = _bottleneck(t, cin, width, s_in, side(size, level))
    return t.params + 2048 * classes + classes, t.macs + 2048 * classes


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_resnet_classifier_is_torchvisions_resnet(name):
    spec = resnet_spec(name)
    model = build_model(spec, "classification", 224, device="meta")
    assert count_params(model) == TORCHVISION[name]
    assert model.head.fc.in_features == 2048 and len(model.head.pool) == 1
    result = analyze(spec, 224, "classification")
    assert (result.params, result.macs) == resnet_classifier_by_hand(name, 224, 1000)


def test_resnet50_classifier_counts_equal_fvcore_and_the_module_is_the_description():
    spec = resnet_spec("ResNet-50", 64)
    for head in ("classification", "retinanet"):
        assert count_differences(count_model(spec, 64, head), count_with_fvcore(spec, 64, head)) == [], head
    structure = describe(spec, 64, "classification", num_classes=5)
    assert structure.features == {"P5": (2048, 2, 2)}
    model = build_model(spec, "classification", 64, num_classes=5)
    modules = dict(model.named_modules())
    assert list(modules) == [layer.name for layer in structure.root.walk()]
    for layer in structure.root.walk():
        own = sum(p.numel() for p in modules[layer.name].parameters(recurse=False))
        assert own == layer_params(layer.kind, layer.attrs), layer.name
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 97, 97)).shape == (2, 5)


def test_resnet_family_refuses_other_output_levels_in_one_line():
    problems = find_problems({"name": "r", "family": "resnet", "stages": [3, 4, 6, 3], "min_level": 3,
                              "max_level": 7})
    assert problems == ["min_level/max_level: resnet outputs C5 only (min_level 5, max_level 5)"]


@pytest.mark.parametrize("name", list(SPINENET_ENDPOINTS))
def test_spinenet_classifier_is_the_reference_backbone_plus_fc(name):
    endpoints = SPINENET_ENDPOINTS[name]
    params, macs, _ = spinenet_counts(name, 224, head=False)
    for classes in (IMAGENET_CLASSES, 5089):
        result = analyze(load_builtin(name), 224, "classification", num_classes=classes)
        assert (result.params, result.macs) == (params + endpoints * classes + classes, macs + endpoints * classes)


def test_paper_shows_every_published_classification_row_with_its_measurement():
    table = paper_table()
    for task, classes in (("imagenet", IMAGENET_CLASSES), ("inaturalist", inaturalist_classes())):
        rows = classification_rows(task)
        assert len(rows) == (7 if task == "imagenet" else 5)
        for row in rows:
            result = analyze(classification_spec(row), 224, "classification", num_classes=classes)
            cells = f"| {row['model']} | 224 | {result.params / 1e6:.2f}M | {row['params_m']}M |"
            assert cells in table, cells
            if task == "imagenet":
                assert f"| {result.macs / 1e9:.2f}B | {row['macs_b']}B |" in table
    assert inaturalist_classes() == 5089
    # ResNet-50 on iNaturalist: the trunk (torchvision minus its fc) and an fc of 2048 x 5089 (+ bias).
    assert f"| ResNet-50 | 224 | {(23_508_032 + 2048 * 5089 + 5089) / 1e6:.2f}M | 33.9M |" in table
    assert math.isclose(23_508_032 + 2_049_000, TORCHVISION["ResNet-50"])

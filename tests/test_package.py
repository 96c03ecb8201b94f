"""The package: `pip install .` (into a temporary folder, from a copy of the checkout, so the repository is never
written) gives the `spinescope` command and the importable packages; the Python API describes a backbone's outputs
like timm's feature_info / detectron2's ShapeSpec; an edited spec trains (the loss goes down)."""
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import spinescope
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.edits import set_block_fn, set_scaling
from spinescope.spinenet.validate import SpecError

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_declares_the_command_and_the_packages():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["scripts"] == {"spinescope": "spinescope.cli:main"}
    assert set(data["tool"]["setuptools"]["packages"]["find"]["include"]) >= {"spinescope*", "spinenet*",
                                                                              "analysis*", "app*", "assets*"}


@pytest.mark.timeout(600)
def test_pip_install_gives_the_spinescope_command(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "tests", "__pycache__", "*.pyc",
                                                                  ".pytest_cache", ".hypothesis", "build",
                                                                  "*.egg-info", "test-artifacts", ".spinescope"))
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--no-index", "--target", str(target), str(source)], capture_output=True, text=True,
                             timeout=540)
    assert install.returncode == 0, install.stderr[-2000:]
    assert (target / "assets" / "specs" / "spinenet-49.yaml").is_file()
    assert (target / "assets" / "published.json").is_file() and (target / "app" / "main.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(target), "SPINESCOPE_HOME": str(tmp_path / "home")}
    command = [sys.executable, str(target / "bin" / "spinescope")]
    listed = subprocess.run([*command, "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(BUILTIN_NAMES)
    analyzed = subprocess.run([*command, "analyze", "spinenet-49s@128"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
    assert analyzed.returncode == 0 and "MACs" in analyzed.stdout
    where = subprocess.run([sys.executable, "-c", "import spinescope, spinenet, analysis, app; print(spinenet.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(target))
    bad = subprocess.run([*command, "app", "--bogus"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("name", ["spinenet-49", "spinenet-mobile-49xs", "resnet50-fpn"])
def test_backbone_outputs_are_described_like_feature_info_and_shapespec(name):
    spec = load_builtin(name)
    backbone = spinescope.create_backbone(name, 96)
    width = spec.scaling.endpoints_num_filters
    assert backbone.feature_info.channels() == [width] * 5
    assert backbone.feature_info.reduction() == [8, 16, 32, 64, 128]
    modules = dict(backbone.named_modules())
    assert all(module in modules for module in backbone.feature_info.module_name())
    shapes = backbone.output_shape()
    assert list(shapes) == ["P3", "P4", "P5", "P6", "P7"]
    with torch.no_grad():
        features = backbone(torch.zeros(1, 3, 96, 96))
    for level, tensor in features.items():
        shape = shapes[level]
        assert tensor.shape == (1, shape.channels, shape.height, shape.width)
        assert shape.stride == 2 ** int(level[1:]) and shape.height == -(-96 // shape.stride)


def test_load_spec_takes_a_name_a_file_or_a_spec_and_refuses_others_in_one_line():
    assert spinescope.load_spec("SpineNet-49S") == load_builtin("spinenet-49s")
    assert spinescope.load_spec(ROOT / "assets" / "specs" / "spinenet-49.yaml") == load_builtin("spinenet-49")
    with pytest.raises(SpecError) as error:
        spinescope.load_spec("no-such-\x1bmodel")
    assert "\n" not in str(error.value) and "\x1b" not in str(error.value)


def test_an_edited_spec_trains_and_its_loss_goes_down():
    """SpineNet-49S made smaller and with one block type changed, classification head, 12 Adam steps on one fixed
    random batch: the model fits it, so the loss falls."""
    spec = set_scaling(load_builtin("spinenet-49s"), filter_size_scale=0.25, endpoints_num_filters=32)
    spec = set_block_fn(spec, "b3", "bottleneck")
    torch.manual_seed(0)
    model = spinescope.create_model(spec, "classification", 64, num_classes=4).train()
    images = torch.randn(8, 3, 64, 64)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert losses[-1] < 0.5 * losses[0], losses

"""The converter: Keras's layer order emulated on hand-made graphs, refusals of checkpoints that do not fit (one
line each), and the `convert-tf` command (without TensorFlow here: its one-line message; with it, a real
checkpoint written by Model Garden converted and loaded)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from model_garden_cases import fixture_spec, load_fixture
from spinescope.analysis.convert.keras_order import ModelGraph, keras_layer_order
from spinescope.analysis.convert.model_garden import ConversionError, convert

ROOT = Path(__file__).resolve().parents[2]
HAS_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("official") is not None


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "spinescope", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_keras_orders_layers_by_depth_then_by_first_reach():
    """input -> a -> b -> out1 and input -> c -> out2, c also read by b. Depths (longest path to an output):
    out1 0, out2 0, b 1, a 2, c 2, input 3. First reached from out1: out1, b, a, input, c; then out2.
    Keras's order: input; a, c (depth 2, by first reach); b; out1, out2."""
    graph = ModelGraph()
    x = graph.add("input")
    a = graph.add("conv", x, target="a")
    c = graph.add("conv", x, target="c")
    b = graph.add("add", a, c)
    out1 = graph.add("relu", b)
    out2 = graph.add("relu", c)
    graph.add("conv", x, target="dead")  # reaches no output: not in the model
    assert keras_layer_order(graph, [out1, out2]) == [x, a, c, b, out1, out2]


def test_a_long_chain_needs_no_recursion():
    graph = ModelGraph()
    x = graph.add("input")
    for _ in range(5000):
        x = graph.add("relu", x)
    assert len(keras_layer_order(graph, [x])) == 5001


@pytest.fixture(scope="module")
def tiny():
    fixture = load_fixture("spinenet49_tiny")
    return fixture["variables"], fixture_spec(fixture["config"])


def test_a_variable_it_cannot_place_is_refused(tiny):
    variables, spec = tiny
    key = "backbone/layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE"  # the stem conv has no bias
    with pytest.raises(ConversionError, match=r"\Acannot place backbone/layer_with_weights-0/bias/.*: our model has "
                                              r"no tensor backbone.stem_conv.0.0.bias\Z"):
        convert({**variables, key: np.zeros(64, np.float32)}, spec)
    gamma = "backbone/layer_with_weights-0/gamma/.ATTRIBUTES/VARIABLE_VALUE"  # a BN's variable on a conv
    with pytest.raises(ConversionError, match=r"no variable gamma in its weighted layer 0 \(conv, our "
                                              r"backbone.stem_conv.0.0\)"):
        convert({**variables, gamma: np.zeros(64, np.float32)}, spec)
    beyond = "backbone/layer_with_weights-999/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    with pytest.raises(ConversionError, match="weighted layers"):
        convert({**variables, beyond: np.zeros(1, np.float32)}, spec)


def test_a_variable_outside_backbone_and_head_is_refused_and_optimizer_state_ignored(tiny):
    variables, spec = tiny
    decoder = {"decoder/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE": np.zeros((1, 1, 8, 8), np.float32)}
    with pytest.raises(ConversionError, match=r"\Acannot place decoder/layer_with_weights-0/kernel/.*: only a "
                                              r"backbone and a RetinaNet head are converted"):
        convert({**variables, **decoder}, spec)
    slots = {"backbone/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/momentum/.ATTRIBUTES/VARIABLE_VALUE":
             np.zeros(1, np.float32), "save_counter/.ATTRIBUTES/VARIABLE_VALUE": np.zeros((), np.int64)}
    assert convert({**variables, **slots}, spec).placed == len(variables)


def test_backbone_only_leaves_the_head_and_the_rest_out(tiny):
    variables, spec = tiny
    backbone = [key for key in variables if key.startswith("backbone/")]
    assert 0 < len(backbone) < len(variables)  # the fixture has a RetinaNet head
    conversion = convert(variables, spec, backbone_only=True)
    assert conversion.placed == len(backbone) and not conversion.with_head
    assert conversion.notes[-1].startswith(f"{len(variables) - len(backbone)} variables outside the backbone left out")
    assert all(name.startswith("backbone.") for name in conversion.state_dict)


def test_a_head_of_other_classes_is_refused(tiny):
    variables, spec = tiny
    with pytest.raises(ConversionError, match=r"shape of head/_classifier/bias/.* is \(6,\) in the checkpoint, "
                                              r"\(182,\) for our head.class_net.predict.bias"):
        convert(variables, replace(spec, head=replace(spec.head, num_classes=91)))


def test_a_shape_that_differs_is_refused(tiny):
    variables, spec = tiny
    wider = replace(spec, scaling=replace(spec.scaling, endpoints_num_filters=16))
    with pytest.raises(ConversionError, match=r"shape of backbone/layer_with_weights-\d+/kernel/.* is \(8, \d+, 1, 1\) "
                                              r"in the checkpoint, \(16, \d+, 1, 1\) for our backbone.endpoints.P\d"):
        convert(variables, wider)


def test_a_missing_variable_is_refused(tiny):
    variables, spec = tiny
    dropped = dict(variables)
    key = next(key for key in dropped if key.endswith("moving_variance/.ATTRIBUTES/VARIABLE_VALUE"))
    del dropped[key]
    with pytest.raises(ConversionError, match=r"the checkpoint has no variable for our backbone\..*running_var"):
        convert(dropped, spec)


def test_the_state_dict_is_keyed_as_our_modules(tiny):
    from spinescope.spinenet.build import build_model

    variables, spec = tiny
    state = convert(variables, spec).state_dict
    ours = build_model(spec, "retinanet", 256, device="meta").state_dict()
    assert list(state) == list(ours)
    assert all(tuple(state[name].shape) == tuple(tensor.shape) for name, tensor in ours.items())


@pytest.mark.skipif(HAS_TF, reason="tensorflow is installed: the real run below covers the command")
def test_convert_tf_without_tensorflow_names_the_extra(tmp_path):
    result = _cli("convert-tf", str(tmp_path / "ckpt-1"), "--spec", "spinenet-49", "--out", str(tmp_path / "x.pt"))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: tensorflow is not installed: pip install 'spinescope[tf]'"


def test_convert_tf_refuses_a_bad_output_directory_before_reading(tmp_path):
    result = _cli("convert-tf", str(tmp_path / "ckpt-1"), "--spec", "spinenet-49", "--out",
                  str(tmp_path / "no" / "x.pt"))
    assert result.returncode == 2 and result.stderr.startswith("error: --out ") and "no such directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TF, reason="needs tensorflow and tf-models-official (the 'tf' extra)")
def test_convert_tf_on_a_real_model_garden_checkpoint(tmp_path):
    """Model Garden builds Mobile SpineNet-49 (built-in widths, hard_swish) with its separable RetinaNet head and
    writes a checkpoint as a detector's (`model/backbone/...`, `model/head/...`); `convert-tf` converts it; our
    model, made by the Python API from a spec file, loads the file (no TensorFlow needed for that) and gives Model
    Garden's features, class logits and box deltas."""
    script = f"""
import numpy as np, tensorflow as tf, tf_keras
from official.vision.modeling.backbones import spinenet_mobile
from official.vision.modeling.heads import dense_prediction_heads
model = spinenet_mobile.SpineNetMobile(input_specs=tf_keras.layers.InputSpec(shape=[None, 256, 384, 3]),
    endpoints_num_filters=48, filter_size_scale=1.0, activation='hard_swish')
head = dense_prediction_heads.RetinaNetHead(min_level=3, max_level=7, num_classes=91, num_anchors_per_location=9,
    num_convs=4, num_filters=48, use_separable_conv=True, activation='hard_swish')
image = np.random.default_rng(1).normal(size=(1, 256, 384, 3)).astype('float32')
head(model(image))
rng = np.random.default_rng(0)
for v in model.weights + head.weights:
    if 'moving_variance' in v.name or 'gamma' in v.name:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype('float32'))
    elif 'bias' in v.name or 'beta' in v.name or 'moving_mean' in v.name:
        v.assign(rng.normal(0, 0.2, v.shape).astype('float32'))
tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=model, head=head)).write(r'{tmp_path}/ckpt')
outputs = model(image, training=False)
scores, boxes = head(outputs)[:2]
arrays = {{'P' + k: v.numpy().transpose(0, 3, 1, 2) for k, v in outputs.items()}}
arrays.update({{'scoresP' + k: v.numpy().transpose(0, 3, 1, 2) for k, v in scores.items()}})
arrays.update({{'boxesP' + k: v.numpy().transpose(0, 3, 1, 2) for k, v in boxes.items()}})
np.savez(r'{tmp_path}/expected.npz', image=image.transpose(0, 3, 1, 2), **arrays)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600, capture_output=True)
    spec_file = ROOT / "assets" / "variants" / "spinenet-mobile-49-model-garden.yaml"  # hard_swish, Model Garden
    result = _cli("convert-tf", str(tmp_path / "ckpt"), "--spec", str(spec_file), "--out",
                  str(tmp_path / "converted.pt"))
    assert result.returncode == 0, result.stderr
    assert "with its RetinaNet head" in result.stdout and 'spinescope.create_model(spec, "retinanet")' in result.stdout
    import spinescope

    model = spinescope.create_model(spec_file, "retinanet", (256, 384))
    model.load_state_dict(torch.load(tmp_path / "converted.pt"))
    expected = np.load(tmp_path / "expected.npz")
    with torch.no_grad():
        features = model.backbone(torch.from_numpy(expected["image"]))
        predictions = model.head(features)
    for level, tensor in features.items():
        for ours, theirs in ((tensor, expected[level]), (predictions[level][0], expected["scores" + level]),
                             (predictions[level][1], expected["boxes" + level])):
            assert np.linalg.norm(ours.numpy() - theirs) / np.linalg.norm(theirs) < 1e-4

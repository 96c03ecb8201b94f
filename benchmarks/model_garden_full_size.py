"""A full-size check against Model Garden: its SpineNet-49 (the 16-block list, min_level 3, built for 640x640) with
a RetinaNet head (4 x 256, 91 classes, 9 anchors), random weights and non-trivial BN statistics, written as a
detector's checkpoint; `spinescope convert-tf --spec spinenet-49` (our 15-block built-in: Model Garden drops its
dead 16th block); our model's P3-P7, class logits and box deltas against Model Garden's, relative L2. Then every
other SpineNet and Mobile SpineNet scaling Model Garden has a built-in for, backbone alone, at 256 x 384.

Needs a second Python with tensorflow-cpu and tf-models-official 2.20 and torch (TensorFlow runs there; the
comparison here):
    .venv/bin/python benchmarks/model_garden_full_size.py --tf-python /tmp/tfvenv/bin/python [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spinescope.spinenet.build import build_model  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402

MODEL_GARDEN = """
import sys, numpy as np, tensorflow as tf, tf_keras
from official.vision.modeling.backbones import spinenet
from official.vision.modeling.heads import dense_prediction_heads
work = sys.argv[1]
backbone = spinenet.SpineNet(input_specs=tf_keras.layers.InputSpec(shape=[None, 640, 640, 3]), min_level=3,
                             max_level=7)
head = dense_prediction_heads.RetinaNetHead(min_level=3, max_level=7, num_classes=91, num_anchors_per_location=9,
                                            num_convs=4, num_filters=256)
image = np.random.default_rng(1).normal(size=(1, 640, 640, 3)).astype('float32')
head(backbone(image))
rng, head_ids = np.random.default_rng(0), {id(w) for w in head.weights}
for v in backbone.weights + head.weights:
    if 'moving_variance' in v.name or 'gamma' in v.name:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype('float32'))
    elif 'bias' in v.name or 'beta' in v.name or 'moving_mean' in v.name:
        v.assign(rng.normal(0, 0.2, v.shape).astype('float32'))
    elif 'kernel' in v.name and id(v) in head_ids:  # the head's N(0, 0.01) would leave its ReLU towers all zero
        v.assign(rng.normal(0, float(np.prod(v.shape[:-1])) ** -0.5, v.shape).astype('float32'))
print(sum(int(np.prod(w.shape)) for w in backbone.trainable_weights))
tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=backbone, head=head)).write(work + '/ckpt')
features = backbone(image, training=False)
scores, boxes = head(features)[:2]
arrays = {'P' + k: v.numpy().transpose(0, 3, 1, 2) for k, v in features.items()}
arrays.update({'scoresP' + k: v.numpy().transpose(0, 3, 1, 2) for k, v in scores.items()})
arrays.update({'boxesP' + k: v.numpy().transpose(0, 3, 1, 2) for k, v in boxes.items()})
np.savez(work + '/expected.npz', image=image.transpose(0, 3, 1, 2), **arrays)
"""


# Built-in -> Model Garden's builder call for its scaling (SCALING_MAP) and the activation used here.
OTHERS = {"spinenet-49s": ("spinenet.SpineNet", "'49S'", "swish"), "spinenet-96": ("spinenet.SpineNet", "'96'", "relu"),
          "spinenet-143": ("spinenet.SpineNet", "'143'", "relu"),
          "spinenet-mobile-49": ("spinenet_mobile.SpineNetMobile", "'49'", "hard_swish"),
          "spinenet-mobile-49s": ("spinenet_mobile.SpineNetMobile", "'49S'", "hard_swish"),
          "spinenet-mobile-49xs": ("spinenet_mobile.SpineNetMobile", "'49XS'", "swish")}
OTHER = """
import sys, numpy as np, tensorflow as tf, tf_keras
from official.vision.modeling.backbones import spinenet, spinenet_mobile
work, scaling, activation = sys.argv[1], sys.argv[2], sys.argv[3]
builder = {builder}
scales = (spinenet if builder is spinenet.SpineNet else spinenet_mobile).SCALING_MAP[scaling]
model = builder(input_specs=tf_keras.layers.InputSpec(shape=[None, 256, 384, 3]), activation=activation, **scales)
rng = np.random.default_rng(0)
for v in model.weights:
    if 'moving_variance' in v.name or 'gamma' in v.name:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype('float32'))
    elif 'bias' in v.name or 'beta' in v.name or 'moving_mean' in v.name:
        v.assign(rng.normal(0, 0.2, v.shape).astype('float32'))
print(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
tf.train.Checkpoint(backbone=model).write(work + '/ckpt')
image = np.random.default_rng(1).normal(size=(1, 256, 384, 3)).astype('float32')
outputs = model(image, training=False)
np.savez(work + '/expected.npz', image=image.transpose(0, 3, 1, 2),
         **{{'P' + k: v.numpy().transpose(0, 3, 1, 2) for k, v in outputs.items()}})
"""


def _relative_l2(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tf-python", required=True, help="a Python with tensorflow, tf-models-official and torch")
    parser.add_argument("--work", help="folder for the checkpoint and outputs (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="spinescope-mg-"))
    quiet = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    made = subprocess.run([args.tf_python, "-c", MODEL_GARDEN, str(work)], check=True, capture_output=True,
                          text=True, env=quiet)
    print(f"Model Garden SpineNet-49 (16-block list, min_level 3), trainable params: {int(made.stdout):,}")
    converted = subprocess.run([args.tf_python, "-m", "spinescope", "convert-tf", str(work / "ckpt"), "--spec",
                                "spinenet-49", "--out", str(work / "converted.pt")], check=True,
                               capture_output=True, text=True, env=quiet)
    print("$ spinescope convert-tf CKPT --spec spinenet-49 --out converted.pt")
    print(converted.stdout.strip().replace(str(work) + "/", ""))
    spec = load_builtin("spinenet-49")
    expected = np.load(work / "expected.npz")
    image = torch.from_numpy(expected["image"])
    print("relative L2 of our outputs to Model Garden's at 640x640:")
    for semantics in ("model_garden", "reference"):
        model = build_model(replace(spec, semantics=semantics), "retinanet", 640)
        model.load_state_dict(torch.load(work / "converted.pt"))
        print(f"  ours ({semantics} semantics), params {sum(p.numel() for p in model.backbone.parameters()):,} "
              "in the backbone:")
        with torch.no_grad():
            features = model.backbone(image)
            predictions = model.head(features)
        print("    features " + ", ".join(f"{level} {_relative_l2(tensor.numpy(), expected[level]):.1e}"
                                          for level, tensor in features.items()))
        print("    class logits / box deltas " + ", ".join(
            f"{level} {_relative_l2(pair[0].numpy(), expected['scores' + level]):.1e}/"
            f"{_relative_l2(pair[1].numpy(), expected['boxes' + level]):.1e}" for level, pair in predictions.items()))
    others(args.tf_python, work, quiet)


def others(tf_python: str, work: Path, env: dict) -> None:
    """Every other scaling: Model Garden's trainable params and ours, variables converted, worst relative L2."""
    print()
    print("Other scalings, backbone alone at 256x384 (height x width), converted with the built-in of that name:")
    print(f"  {'built-in':22s} {'activation':10s} {'Model Garden':>13s} {'ours':>13s} {'variables':>9s}  worst P3-P7")
    for name, (builder, scaling, activation) in OTHERS.items():
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        made = subprocess.run([tf_python, "-c", OTHER.format(builder=builder), str(folder), scaling.strip("'"),
                               activation], check=True, capture_output=True, text=True, env=env)
        converted = subprocess.run([tf_python, "-m", "spinescope", "convert-tf", str(folder / "ckpt"), "--spec", name,
                                    "--out", str(folder / "converted.pt")], check=True, capture_output=True,
                                   text=True, env=env)
        spec = replace(load_builtin(name), semantics="model_garden", activation=activation)
        model = build_model(spec, "none", (256, 384)).backbone
        model.load_state_dict(torch.load(folder / "converted.pt"))
        expected = np.load(folder / "expected.npz")
        with torch.no_grad():
            outputs = model(torch.from_numpy(expected["image"]))
        worst = max(_relative_l2(tensor.numpy(), expected[level]) for level, tensor in outputs.items())
        variables = converted.stdout.strip().splitlines()[-1].split()[0]
        ours = sum(parameter.numel() for parameter in model.parameters())
        print(f"  {name:22s} {activation:10s} {int(made.stdout):>13,d} {ours:>13,d} {variables:>9s}  {worst:.1e}")


if __name__ == "__main__":
    main()

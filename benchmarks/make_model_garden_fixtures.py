"""Writes the Model Garden fixtures of tests/modelgarden: small-width SpineNet-49 and Mobile SpineNet-49 built by
TensorFlow Model Garden itself, with random weights and non-trivial batch-norm statistics, their checkpoint
variables (keyed by checkpoint key, as `tf.train.load_checkpoint` reads them), two inputs (256x256 and a
non-square 256 high x 384 wide: Model Garden needs multiples of 128) and its P3-P7 outputs at each.

Run with a Python that has tensorflow-cpu and tf-models-official 2.20 (not the project's venv):

    python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.20.0 tf-models-official==2.20.0
    /tmp/tfvenv/bin/python benchmarks/make_model_garden_fixtures.py [OUT_DIR]   (default tests/modelgarden/fixtures)

Each file is float32 .npz: `config` (JSON: what was built), `keys` and `var_<i>` (the checkpoint's variables),
`input_<H>x<W>` (NCHW) and `P<l>_<H>x<W>` (NCHW); with a RetinaNet head (config `head`) also its outputs
`scores<l>_<H>x<W>` and `boxes<l>_<H>x<W>` (NCHW). The tests convert the variables and compare our outputs.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from official.vision.modeling.backbones import spinenet, spinenet_mobile  # noqa: E402
from official.vision.modeling.heads import dense_prediction_heads  # noqa: E402

SIZES = ((256, 256), (256, 384))  # (height, width)
TALL = (384, 256)  # the other non-square orientation, for the smallest fixture only (the files stay under ~2 MB)
MODELS = {
    # Model Garden's 16-block list, min_level 3: its level-2 16th block reaches no output and is dropped.
    "spinenet49_tiny": dict(family="spinenet", filter_size_scale=0.125, endpoints_num_filters=8, resample_alpha=0.5,
                            activation="relu", min_level=3, max_level=7, seed=1,
                            head=dict(num_convs=2, width=8, num_classes=3, num_anchors=2, separable=False)),
    "spinenet49_tiny_swish": dict(family="spinenet", filter_size_scale=0.125, endpoints_num_filters=8,
                                  resample_alpha=0.5, activation="swish", min_level=2, max_level=6, seed=2),
    "mobile49_tiny": dict(family="spinenet_mobile", filter_size_scale=0.25, endpoints_num_filters=8,
                          activation="hard_swish", min_level=3, max_level=7, seed=3,
                          head=dict(num_convs=2, width=8, num_classes=3, num_anchors=2, separable=True),
                          sizes=SIZES + (TALL,)),
}


def build(config: dict, height: int, width: int):
    """Returns Model Garden's backbone for `config` built for a height x width input, as its detection configs
    build it (a fixed input size: built for an unknown size, Model Garden cannot compare shapes and skips the
    0-outdegree merges)."""
    specs = tf_keras.layers.InputSpec(shape=[None, height, width, 3])
    common = dict(input_specs=specs, min_level=config["min_level"], max_level=config["max_level"],
                  endpoints_num_filters=config["endpoints_num_filters"],
                  filter_size_scale=config["filter_size_scale"], activation=config["activation"])
    if config["family"] == "spinenet":
        return spinenet.SpineNet(block_specs=spinenet.build_block_specs(), resample_alpha=config["resample_alpha"],
                                 **common)
    return spinenet_mobile.SpineNetMobile(block_specs=spinenet_mobile.build_block_specs(), **common)


def build_head(config: dict):
    """Returns Model Garden's RetinaNet head for `config["head"]` (None without one)."""
    head = config.get("head")
    if head is None:
        return None
    return dense_prediction_heads.RetinaNetHead(
        min_level=config["min_level"], max_level=config["max_level"], num_classes=head["num_classes"],
        num_anchors_per_location=head["num_anchors"], num_convs=head["num_convs"], num_filters=head["width"],
        use_separable_conv=head["separable"], activation=config["activation"])


def randomize(model, rng: np.random.Generator, kernels: bool = False) -> None:
    """Every variable random: biases and BN values drawn so that no BN is an identity (scale 0.5-1.5, shift and mean
    +-0.2, variance 0.5-1.5); conv kernels as initialized (the backbone's variance scaling) or, with `kernels`,
    drawn with std 1/sqrt(fan-in) (the head's own N(0, 0.01) would leave its ReLU towers all zero)."""
    for variable in model.weights:
        name, shape = variable.name, variable.shape
        if kernels and "kernel" in name:
            fan_in = int(np.prod(shape[:2] if "depthwise" in name else shape[:-1]))
            variable.assign(rng.normal(0.0, fan_in ** -0.5, shape).astype(np.float32))
        if "gamma" in name or "moving_variance" in name:
            variable.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        elif "beta" in name or "moving_mean" in name or "bias" in name:
            variable.assign(rng.normal(0.0, 0.2, shape).astype(np.float32))


def write(name: str, config: dict, out: Path) -> Path:
    tf.keras.utils.set_random_seed(config["seed"])
    rng = np.random.default_rng(config["seed"])
    model = build(config, *SIZES[0])
    head = build_head(config)
    if head is not None:
        head(model(np.zeros((1, *SIZES[0], 3), np.float32)))  # builds its variables
    randomize(model, rng)
    if head is not None:
        randomize(head, rng, kernels=True)
    arrays = {}
    parts = {"backbone": model} if head is None else {"backbone": model, "head": head}
    with tempfile.TemporaryDirectory() as folder:
        prefix = tf.train.Checkpoint(**parts).write(os.path.join(folder, "ckpt"))
        reader = tf.train.load_checkpoint(prefix)
        keys = sorted(key for key in reader.get_variable_to_shape_map() if key != "_CHECKPOINTABLE_OBJECT_GRAPH")
        for index, key in enumerate(keys):
            arrays[f"var_{index}"] = reader.get_tensor(key)
    sizes = config.get("sizes", SIZES)
    for height, width in sizes:
        if (height, width) != SIZES[0]:  # the same weights in the model built for this size
            weights = model.get_weights()
            model = build(config, height, width)
            model.set_weights(weights)
        # Multiples of 1/8 in [-2, 2]: exact in float32 and small once compressed (the files stay under 2 MB).
        image = (rng.integers(-16, 17, (1, height, width, 3)) / 8).astype(np.float32)
        outputs = model(image, training=False)
        arrays[f"input_{height}x{width}"] = image.transpose(0, 3, 1, 2)
        for level, tensor in outputs.items():
            arrays[f"P{level}_{height}x{width}"] = tensor.numpy().transpose(0, 3, 1, 2)
        if head is not None:
            scores, boxes = head(outputs)[:2]
            for level in outputs:
                arrays[f"scores{level}_{height}x{width}"] = scores[level].numpy().transpose(0, 3, 1, 2)
                arrays[f"boxes{level}_{height}x{width}"] = boxes[level].numpy().transpose(0, 3, 1, 2)
    record = {key: value for key, value in config.items() if key not in ("seed", "sizes")}
    record.update(tf_version=tf.__version__, params=int(model.count_params()), sizes=[list(s) for s in sizes])
    path = out / f"{name}.npz"
    np.savez_compressed(path, config=np.array(json.dumps(record)), keys=np.array(keys), **arrays)
    return path


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests" / \
        "modelgarden" / "fixtures"
    out.mkdir(parents=True, exist_ok=True)
    for name, config in MODELS.items():
        path = write(name, config, out)
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

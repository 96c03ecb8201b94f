"""Reading a TF2 checkpoint into {checkpoint key: numpy array}: the converter's one use of TensorFlow (extra `tf`)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spinescope.extras import require


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: the message is one line."""


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Returns every variable of the TF checkpoint at `path` (a checkpoint prefix such as `ckpt-1`, or a directory
    whose latest checkpoint is taken) as {key: numpy array}. Raises MissingExtra without tensorflow, and
    CheckpointError when there is no readable checkpoint there."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not the user's concern
    tf = require("tensorflow")
    path = str(path)
    prefix = tf.train.latest_checkpoint(path) if Path(path).is_dir() else path
    if prefix is None:
        raise CheckpointError(f"{ascii(path)[1:-1]}: a directory without a TF checkpoint (no 'checkpoint' file)")
    try:
        reader = tf.train.load_checkpoint(prefix)
        return {key: np.asarray(reader.get_tensor(key)) for key in reader.get_variable_to_shape_map()
                if key != "_CHECKPOINTABLE_OBJECT_GRAPH"}
    except (tf.errors.OpError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{ascii(path)[1:-1]}: not a readable TF checkpoint ({first[:200]})") from None

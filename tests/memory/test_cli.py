"""`spinescope memory`: JSON fields, --fit, the table's units, and bad arguments as one escaped line."""
import json

import pytest

from spinescope.analysis.cli import main
from spinescope.analysis.memory.estimate import estimate_training_memory
from spinescope.spinenet.builtins import load_builtin


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))


def test_json_with_fit(capsys):
    assert main(["memory", "spinenet-49s", "--head", "retinanet", "--input-size", "256", "--batch", "4",
                 "--optimizer", "adamw", "--precision", "bf16", "--fit", "2GiB", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("peak_bytes", "weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes",
                "max_batch"):
        assert isinstance(data[key], int)
    params = data["params"]
    assert data["gradients_bytes"] == 4 * params and data["optimizer_bytes"] >= 8 * params
    assert data["fit_bytes"] == 2 * 2 ** 30
    spec = load_builtin("spinenet-49s")
    fits = [estimate_training_memory(spec, 256, "retinanet", b, "adamw", "bf16").peak_bytes for b in
            (data["max_batch"], data["max_batch"] + 1)]
    assert fits[0] <= 2 ** 31 < fits[1]
    assert {row["input_size"] for row in data["fit"]} >= {256, 640, 1024}
    assert all(row["max_batch"] >= 0 and row["resnet50-fpn_max_batch"] >= 0 for row in data["fit"])
    peaks = [row["peak_bytes"] for row in data["memory_vs_batch"]]
    assert peaks == sorted(peaks) and data["memory_vs_batch"][0]["batch"] == 1


def test_table_has_units(capsys):
    assert main(["memory", "resnet50-fpn@320", "--fit", "8GB"]) == 0
    out = capsys.readouterr().out
    assert "MiB" in out and "GiB" in out and "largest batch that fits 7.45 GiB" in out
    assert "backbone.blocks.c2_0" in out and "ResNet-50-FPN" in out


@pytest.mark.parametrize("args,message", [
    (["--fit", "16XB"], "cannot read '16XB' as a memory size"),
    (["--fit", "\x1b[31m1GiB"], "cannot read '\\x1b[31m1GiB' as a memory size"),
    (["--fit", "0GiB"], "out of range"),
    (["--batch", "0"], "batch 0 is out of range"),
    (["--batch", "x"], "batch must be an integer, got 'x'"),
    (["--input-size", "8"], "input size 8 is out of range"),
    (["--optimizer", "adam"], "invalid choice: 'adam'"),
    (["--precision", "fp8"], "invalid choice: 'fp8'"),
])
def test_bad_arguments_are_one_line(capsys, args, message):
    assert main(["memory", "spinenet-49s", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err and "\x1b" not in err


def test_unknown_spec_is_one_line(capsys):
    assert main(["memory", "no-such-net"]) == 2
    assert "unknown built-in 'no-such-net'" in capsys.readouterr().err

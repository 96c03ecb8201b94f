"""`spinescope sweep`: the grid, the local run (one worker process), the same sweep on a local Ray cluster
(same points, same structure), failures reported per point, and bad arguments as one line."""
import json
import re

import pytest

from spinescope.analysis.cli import main
from spinescope.analysis.latency.history import count_results, get_results
from spinescope.analysis.sweep.grid import GridError, batches, grid_points, input_sizes, precisions
from spinescope.spinenet.builtins import load_builtin

SMALL = ["spinenet-mobile-49xs", "spinenet-49s", "--input-size", "64", "--batch", "1,2", "--iters", "2",
         "--warmup", "1", "--threads", "1", "--device", "cpu", "--json"]


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    monkeypatch.delenv("SPINESCOPE_RAY", raising=False)
    return tmp_path


def test_grid_parsing_and_points():
    assert input_sizes("512,640, 1024,640") == [(512, 512), (640, 640), (1024, 1024)]
    assert input_sizes("512,1333x800,512x512") == [(512, 512), (800, 1333)]
    assert batches("1,8") == [1, 8] and precisions("fp32,bf16") == ["fp32", "bf16"]
    for parse, text, message in ((input_sizes, "64,x", "got 'x'"), (batches, "0", "batch 0 is out"),
                                 (precisions, "fp8", "unknown precision 'fp8'"),
                                 (input_sizes, "6\x1b4", "got '6\\x1b4'")):
        with pytest.raises(GridError, match=re.escape(message)) as error:
            parse(text)
        assert "\n" not in str(error.value) and "\x1b" not in str(error.value)
    a, b = load_builtin("spinenet-49s"), load_builtin("resnet50-fpn")
    points = grid_points([("spinenet-49s", a, None), ("resnet50-fpn", b, 320)], None, [1, 8], ["fp32", "bf16"])
    assert len(points) == 8 and points[0].key == ("spinenet-49s", (a.input_size, a.input_size), 1, "fp32")
    assert points[-1].key == ("resnet50-fpn", (320, 320), 8, "bf16")
    assert len(grid_points([("x", a, None)], [512, 640, 1024], [1, 8], ["fp32", "bf16"])) == 12


def _structure(record):
    return {key: type(value).__name__ for key, value in record.items() if key not in ("history_id", "run_id")}


def _check_points(data, expected_keys):
    keys = [(p["spec"], p["input_size"], p["batch"], p["precision"]) for p in data["points"]]
    assert sorted(keys) == sorted(expected_keys) and data["failed"] == []
    for point in data["points"]:
        assert 0 < point["p10_ms"] <= point["median_ms"] <= point["p90_ms"]
        assert point["train_peak_bytes"] > point["peak_memory_bytes"] > 0
        stored = get_results([point["history_id"]])[0]
        assert stored.median_ms == point["median_ms"] and stored.batch == point["batch"]


EXPECTED = [(name, 64, batch, "fp32") for name in ("spinenet-mobile-49xs", "spinenet-49s") for batch in (1, 2)]


def test_local_sweep_json_and_history(capsys):
    assert main(["sweep", *SMALL, "--per-block"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runner"] == "local"
    _check_points(data, EXPECTED)
    assert count_results() == 4
    assert all(p["blocks"] and all(b["median_ms"] > 0 for b in p["blocks"]) for p in data["points"])


def test_ray_sweep_gives_the_local_points(ray_cluster, capsys):
    assert main(["sweep", *SMALL, "--no-save"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["sweep", *SMALL, "--ray", "local"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["runner"] == "ray"
    _check_points(remote, EXPECTED)
    assert count_results() == 4  # the Ray points, stored by the driver; --no-save stored none
    by_key = {(p["spec"], p["batch"]): p for p in local["points"]}
    for point in remote["points"]:
        twin = by_key[(point["spec"], point["batch"])]
        assert _structure(point) == _structure(twin)
        assert point["train_peak_bytes"] == twin["train_peak_bytes"]  # the estimate does not depend on the runner
        assert point["device"] == twin["device"] == "cpu"
    assert len({p["run_id"] for p in remote["points"]}) == 4  # one latency job (worker process) per task


def test_ray_failures_are_reported_not_dropped(ray_cluster, capsys):
    # A time limit no worker can meet: every point fails inside its task and is listed with its error.
    assert main(["sweep", "spinenet-mobile-49xs", "--input-size", "64", "--batch", "1,2", "--iters", "1",
                 "--warmup", "0", "--device", "cpu", "--timeout", "0.01", "--ray", "local", "--json"]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["points"] == [] and sorted(f["batch"] for f in data["failed"]) == [1, 2]
    assert all("timed out" in f["error"] for f in data["failed"])
    assert captured.err.count("error: spinenet-mobile-49xs@64 batch") == 2


@pytest.mark.parametrize("args,message", [
    (["--input-size", "64,x"], "got 'x'"),
    (["--batch", "1,0"], "batch 0 is out of range"),
    (["--precision", "fp32,fp8"], "unknown precision 'fp8'"),
    (["--precision", "fp16", "--device", "cpu"], "fp16 is measured on a GPU only"),
    (["--per-block", "--iters", "0"], "iterations 0 is out of range"),
])
def test_bad_arguments_are_one_line(capsys, args, message):
    assert main(["sweep", "spinenet-49s", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err

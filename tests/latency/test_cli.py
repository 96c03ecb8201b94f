"""`spinescope latency` and `spinescope history`: JSON fields, the table, bad arguments, and the
history rows the command (not the job) writes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spinescope.analysis.cli import main
from spinescope.analysis.latency.history import count_results, list_results
from spinescope.analysis.latency.request import cuda_available

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--input-size", "64", "--iters", "3", "--warmup", "1", "--threads", "1", "--device", "cpu"]


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    return tmp_path


def _cli(*args, home):
    env = {**os.environ, "SPINESCOPE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "spinescope", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_latency_json_then_history_in_other_processes(spinescope_home):
    run = _cli("latency", "spinenet-49s", "spinenet-mobile-49xs", *FAST, "--json", home=spinescope_home)
    assert run.returncode == 0, run.stderr
    first, second = json.loads(run.stdout)
    for row, name in ((first, "SpineNet-49S"), (second, "Mobile SpineNet-49XS")):
        assert row["name"] == name and row["device"] == "cpu" and row["device_name"]
        assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"] and row["mean_ms"] > 0
        assert row["throughput"] == pytest.approx(1000 / row["median_ms"])
        assert row["peak_memory_bytes"] > row["weight_bytes"] > 0
        assert row["settings"] == {"input_size": 64, "head": "none", "batch": 1, "device": "cpu",
                                   "precision": "fp32", "channels_last": False, "fold_bn": False, "compile": False,
                                   "threads": 1, "iterations": 3, "warmup": 1}
    assert first["ratio_to_first"] == 1.0
    assert second["ratio_to_first"] == pytest.approx(second["median_ms"] / first["median_ms"])
    assert first["history_id"] == 1 and second["history_id"] == 2
    # The command, as the job's caller, wrote one history row per result.
    assert [(entry.id, entry.run_id) for entry in list_results()] == [(2, first["run_id"]), (1, first["run_id"])]

    history = _cli("history", "--json", "--limit", "1", home=spinescope_home)
    assert history.returncode == 0, history.stderr
    (latest,) = json.loads(history.stdout)
    assert latest["id"] == 2 and latest["label"] == "Mobile SpineNet-49XS"
    assert latest["median_ms"] == second["median_ms"] and latest["spec_hash"] == second["spec_hash"]


def test_latency_table_with_units(capsys, spinescope_home):
    assert main(["latency", "spinenet-mobile-49xs", *FAST, "--batch", "2", "--fold-bn", "--channels-last",
                 "--head", "classification", "--precision", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "median ms" in out and "images/s" in out and "peak MiB" in out
    assert "Mobile SpineNet-49XS" in out and "bf16" in out and "CL fold" in out
    assert "saved to history as id 1" in out

    assert main(["history", "--spec", "spinenet-mobile-49xs"]) == 0
    listing = capsys.readouterr().out
    assert "Mobile SpineNet-49XS" in listing and "median ms" in listing and "cpu" in listing
    assert main(["history", "--spec", "spinenet-49"]) == 0
    assert "Mobile" not in capsys.readouterr().out
    assert main(["history", "--compare", "1", "1", "--json"]) == 0
    assert [row["ratio_to_first"] for row in json.loads(capsys.readouterr().out)] == [1.0, 1.0]


def test_no_save_writes_no_history_row(capsys, spinescope_home):
    assert main(["latency", "spinenet-mobile-49xs", *FAST, "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "Mobile SpineNet-49XS" in out and "saved to history" not in out
    assert count_results() == 0


def test_empty_history(capsys, spinescope_home):
    assert main(["history"]) == 0
    assert "no stored latency results" in capsys.readouterr().out
    assert main(["history", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("args,message", [
    (["latency", "spinenet-49s", "--batch", "0"], "argument --batch: batch 0 is out of range [1, 4096]"),
    (["latency", "spinenet-49s", "--iters", "abc"], "argument --iters: iterations must be an integer, got 'abc'"),
    (["latency", "spinenet-49s", "--warmup", "-1"], "warm-up iterations -1 is out of range"),
    (["latency", "spinenet-49s", "--threads", "0"], "argument --threads: threads 0 is out of range"),
    (["latency", "spinenet-49s", "--timeout", "-5"], "argument --timeout: time limit -5 s is out of range"),
    (["latency", "spinenet-49s", "--input-size", "5"], "argument --input-size: input size 5 is out of range"),
    (["latency", "spinenet-49s", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["latency", "spinenet-49s", "--precision", "int8"], "argument --precision: invalid choice: 'int8'"),
    pytest.param(["latency", "spinenet-49s", "--device", "cuda"], "device cuda: no CUDA GPU found",
                 marks=pytest.mark.skipif(cuda_available(), reason="a CUDA GPU is present: device cuda is valid")),
    (["latency", "spinenet-49s", "--precision", "fp16", "--device", "cpu"], "fp16 is measured on a GPU only"),
    (["latency", "spinenet-4x"], "unknown built-in 'spinenet-4x'"),
    (["latency", "spinenet-49s@3"], "spinenet-49s@3: input size 3 is out of range"),
    (["latency", "missing.yaml"], "missing.yaml"),
    (["latency", "spinenet-49s", "--memory-limit-mib", "1"], "refused: the run needs about"),
    (["latency"], "the following arguments are required: SPEC"),
    (["history", "--limit", "0"], "argument --limit: limit 0 is out of range"),
    (["history", "--compare", "7"], "no stored latency result with id 7"),
])
def test_bad_arguments_one_line_exit_2(capsys, args, message):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err


def test_bad_argument_in_a_real_process_has_no_traceback(spinescope_home):
    if cuda_available():  # device cuda is valid here; fp16 on the CPU is refused the same way
        run = _cli("latency", "spinenet-49s", "--device", "cpu", "--precision", "fp16", home=spinescope_home)
        expected = "error: SpineNet-49S: fp16 is measured on a GPU only"
    else:
        run = _cli("latency", "spinenet-49s", "--device", "cuda", home=spinescope_home)
        expected = "error: device cuda: no CUDA GPU found"
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith(expected) and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_failed_run_is_one_line_exit_1(capsys):
    assert main(["latency", "spinenet-mobile-49xs", *FAST, "--timeout", "0.2"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: timed out after 0.2 s while the worker started; raise the time limit or lower "
                            "iterations, batch or input size\n")


def test_unreadable_history_file(capsys, spinescope_home):
    (spinescope_home / "history.sqlite").write_bytes(b"this is not an SQLite database" * 100)
    assert main(["history"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read the history file ") and err.endswith(
        "history.sqlite: file is not a database\n")
    # A run still prints its figures and says in one line that they were not saved.
    assert main(["latency", "spinenet-mobile-49xs", *FAST]) == 0
    captured = capsys.readouterr()
    assert "Mobile SpineNet-49XS" in captured.out and "saved to history" not in captured.out
    assert captured.err == "warning: history not saved: DatabaseError: file is not a database\n"


def test_a_height_by_width_run_is_timed_stored_and_listed(capsys, spinescope_home):
    """`--input-size 96x64` times a (1, 3, 64, 96) input per block; JSON and history keep the size as "96x64"."""
    assert main(["latency", "spinenet-mobile-49xs", *FAST, "--input-size", "96x64", "--per-block", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["input_size"] == "96x64" and result["settings"]["input_size"] == "96x64"
    assert result["blocks"] and result["median_ms"] > 0
    assert list_results()[0].input_size == "96x64"
    assert main(["history"]) == 0
    assert " 96x64 " in capsys.readouterr().out

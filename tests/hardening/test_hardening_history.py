"""A latency history whose rows are cut off mid-field or hold a field of the wrong type (a file truncated or edited
mid-row: SQLite's integrity check still says 'ok'). The readable rows are listed, each damaged row is skipped
and named on one line (`history`, the Latency tab); `history --compare` with a damaged id is one line."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from spinescope.analysis.cli import main
from spinescope.analysis.latency.history import list_results, store_results
from spinescope.analysis.latency.results import LatencyResult

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _result(label: str, median_ms: float) -> LatencyResult:
    return LatencyResult(
        label=label, spec_name=label, spec_hash="h-" + label, input_size=64, head="none", batch=1, device="cpu",
        device_name="Test CPU", precision="fp32", dtype="float32", memory_format="contiguous", fold_bn=False,
        compiled=False, threads=1, iterations=3, warmup=1, median_ms=median_ms, p10_ms=median_ms * 0.9,
        p90_ms=median_ms * 1.2, mean_ms=median_ms, min_ms=median_ms * 0.8, throughput=1e3 / median_ms,
        peak_memory_bytes=2 ** 20, weight_bytes=2 ** 19, activation_bytes=2 ** 19, estimated_memory_bytes=2 ** 20,
        build_s=0.1, compile_s=None, bn_folded=0, bn_remaining=4, ratio_to_first=1.0, torch_version="2.13.0+cpu",
        environment={"torch_version": "2.13.0+cpu"}, run_id="run-a", created_at="2026-01-01T00:00:00+00:00",
        samples_ms=[median_ms] * 3)


# (what is damaged, the SQL that damages row 2..6, the reason named for it)
DAMAGE = [
    ("figures cut off", "UPDATE latency SET figures = substr(figures, 1, 37) WHERE id = 2",
     "figures is not a JSON object (cut off?)"),
    ("settings cut off", "UPDATE latency SET settings = substr(settings, 1, 5) WHERE id = 3",
     "settings is not a JSON object (cut off?)"),
    ("median not a number", "UPDATE latency SET median_ms = '1.5.' WHERE id = 4",
     "median_ms is '1.5.', not a finite number over 0"),
    ("size cut off", "UPDATE latency SET input_size = '1333x' WHERE id = 5", "input_size is '1333x', not N or WxH"),
    ("label a blob", "UPDATE latency SET label = x'00ff' WHERE id = 6", "label is bytes, not text"),
]


def _damaged_history(home: Path) -> Path:
    ids = store_results([_result(f"model-{i}", 10.0 + i) for i in range(1, 8)])
    assert ids == list(range(1, 8))
    path = home / "history.sqlite"
    with sqlite3.connect(path) as connection:
        for _, sql, _ in DAMAGE:
            connection.execute(sql)
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return path


def test_damaged_rows_are_skipped_and_named(spinescope_home):
    _damaged_history(spinescope_home)
    skipped: list[str] = []
    entries = list_results(limit=50, skipped=skipped)
    assert [entry.id for entry in entries] == [7, 1]
    assert [entry.median_ms for entry in entries] == [17.0, 11.0]
    assert skipped == ["history row 6 is damaged: label is bytes, not text",
                       "history row 5 is damaged: input_size is '1333x', not N or WxH",
                       "history row 4 is damaged: median_ms is '1.5.', not a finite number over 0",
                       "history row 3 is damaged: settings is not a JSON object (cut off?)",
                       "history row 2 is damaged: figures is not a JSON object (cut off?)"]
    assert list_results(limit=50) == entries  # without `skipped`: the same rows, nothing raised


def test_history_command_lists_the_readable_rows_and_one_note(spinescope_home, capsys):
    path = _damaged_history(spinescope_home)
    assert main(["history"]) == 0
    out, err = capsys.readouterr()
    ids = [int(line.split()[0]) for line in out.splitlines()[1:] if line.split() and line.split()[0].isdigit()]
    assert ids == [7, 1]
    assert err == (f"note: skipped 5 damaged row(s) of {path}: history row 6 is damaged: label is bytes, not text; "
                   "history row 5 is damaged: input_size is '1333x', not N or WxH; history row 4 is damaged: "
                   "median_ms is '1.5.', not a finite number over 0; and 2 more\n")
    assert main(["history", "--json"]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [7, 1]


def test_history_compare_with_a_damaged_row_is_one_line(spinescope_home, capsys):
    _damaged_history(spinescope_home)
    assert main(["history", "--compare", "1", "2"]) == 2
    assert capsys.readouterr().err == ("error: history row 2 is damaged: figures is not a JSON object (cut off?)\n")
    assert main(["history", "--compare", "7", "1"]) == 0


def test_latency_tab_shows_the_readable_history_and_names_the_rest(spinescope_home):
    from streamlit.testing.v1 import AppTest

    from app_runs import run

    _damaged_history(spinescope_home)
    app = run(AppTest.from_file(MAIN, default_timeout=60))
    app.session_state["tab"] = "Latency"
    run(app)
    assert not [item.value for item in app.error]
    warnings = [item.value for item in app.warning if "damaged" in item.value]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith("Skipped 5 damaged history row\\(s\\): history row 6 is damaged: label is bytes")
    frame = next(item.value for item in app.dataframe if "median ms" in item.value)
    assert list(frame["model"]) == ["model-7", "model-1"]

"""Model labels are printed whole by `spinescope history` and `spinescope latency`'s table: the model column is as
wide as its longest label, and every row's columns line up under the header. Rows are made up (nothing measured)
and stored in the real history file of a private SPINESCOPE_HOME."""
import pytest

from spinescope.analysis.cli import main
from spinescope.analysis.latency.cli import format_latency
from spinescope.analysis.latency.history import save_results
from spinescope.analysis.latency.results import LatencyResult

LONG = "Mobile SpineNet-49XS (current), edited #3fa2c1d0"  # 48 characters, over any fixed width used before
SHORT = "ResNet-50-FPN"


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    return tmp_path


def result(label: str, median: float) -> LatencyResult:
    return LatencyResult(
        label=label, spec_name=label, spec_hash="0123456789abcdef", input_size=64, head="none", batch=1,
        device="cpu", device_name="Test CPU", precision="fp32", dtype="float32", memory_format="contiguous",
        fold_bn=False, compiled=False, threads=1, iterations=3, warmup=1, median_ms=median, p10_ms=median,
        p90_ms=median, mean_ms=median, min_ms=median, throughput=1e3 / median, peak_memory_bytes=2 ** 20,
        weight_bytes=2 ** 20, activation_bytes=0, estimated_memory_bytes=2 ** 20, build_s=0.1, compile_s=None,
        bn_folded=0, bn_remaining=1, ratio_to_first=1.0, torch_version="2.0.0+cpu", environment={},
        run_id="run-1", created_at="2026-01-05T10:00:00+00:00", samples_ms=[median])


def columns_line_up(header: str, rows: list[tuple[str, str, str]], after: str, right: bool = False) -> None:
    """Each row (text, label, next value) has its label in full at the header's "model", then the next value at
    the header's `after`: starting where it starts, or (`right`-aligned) ending where it ends."""
    start = header.index("model")
    for row, label, value in rows:
        assert row[start:start + len(label)] == label, row
        rest = row[start + len(label):]
        gap = len(rest) - len(rest.lstrip(" "))
        at = start + len(label) + gap
        assert row[at:at + len(value)] == value, row
        if right:
            assert at + len(value) == header.index(after) + len(after), (header, row)
        else:
            assert at == header.index(after), (header, row)


def test_history_prints_whole_labels_in_aligned_columns(capsys):
    _, warning = save_results([result(LONG, 30.0), result(SHORT, 40.0)])
    assert warning is None
    assert main(["history"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()[:3]
    columns_line_up(header, [(rows[0], SHORT, "0123456789abcdef"), (rows[1], LONG, "0123456789abcdef")],
                    "hash")  # newest (id 2) first


def test_history_escapes_control_characters_in_stored_labels(capsys):
    save_results([result("evil\x1b[31m", 10.0)])
    assert main(["history"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "evil\\x1b[31m" in out


def test_the_latency_table_prints_whole_labels_in_aligned_columns():
    lines = format_latency([result(SHORT, 40.0), result(LONG, 30.0)]).splitlines()
    header = lines[1]
    columns_line_up(header, [(lines[2], SHORT, "64"), (lines[3], LONG, "64")], "input", right=True)

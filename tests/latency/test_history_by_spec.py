"""The latency history is keyed by the spec's content hash, not by its label: an edited spec measured under the
built-in's label is a line of its own in the history plot, and a row stored without a hash stays readable (keyed
by its label). The rows go through the real history file (`save_results`, `list_results`) in tmp_path."""
from dataclasses import replace

import pandas as pd

from spinescope.analysis.latency.history import list_results, save_results
from spinescope.analysis.latency.results import LatencyResult
from spinescope.app.latency_view import history_figure, results_frame

LABEL = "SpineNet-49 (current)"


def result(spec_hash: str, median: float, when: str, label: str = LABEL, head: str = "none") -> LatencyResult:
    """A made-up result (figures chosen by hand, nothing measured)."""
    return LatencyResult(
        label=label, spec_name="SpineNet-49", spec_hash=spec_hash, input_size=512, head=head, batch=1, device="cpu",
        device_name="Test CPU", precision="fp32", dtype="float32", memory_format="contiguous", fold_bn=False,
        compiled=False, threads=1, iterations=3, warmup=1, median_ms=median, p10_ms=median * 0.9,
        p90_ms=median * 1.2, mean_ms=median, min_ms=median * 0.8, throughput=1e3 / median,
        peak_memory_bytes=2 ** 20, weight_bytes=2 ** 20, activation_bytes=0, estimated_memory_bytes=2 ** 20,
        build_s=0.1, compile_s=None, bn_folded=0, bn_remaining=1, ratio_to_first=1.0, torch_version="2.0.0+cpu",
        environment={}, run_id=f"run-{when}", created_at=f"2026-01-05T10:{when}+00:00", samples_ms=[median])


def stored_frame(results, tmp_path):
    path = tmp_path / "history.sqlite"
    _, warning = save_results(results, path)
    assert warning is None
    return results_frame(list_results(path=path))


def test_an_edited_spec_under_the_builtins_label_is_a_line_of_its_own(tmp_path):
    builtin, edited = "aaaaaaaa11111111", "bbbbbbbb22222222"
    frame = stored_frame([result(builtin, 30.0, "00:00"), result(edited, 45.0, "01:00"),
                          result(builtin, 31.0, "02:00"), result(edited, 46.0, "03:00")], tmp_path)
    figure = history_figure(frame)
    lines = {trace.name: list(trace.y) for trace in figure.data}
    assert lines == {f"{LABEL} #aaaaaaaa @512": [30.0, 31.0], f"{LABEL} #bbbbbbbb @512": [45.0, 46.0]}
    assert list(frame["spec"]) == ["bbbbbbbb", "aaaaaaaa", "bbbbbbbb", "aaaaaaaa"]  # newest first, short hash
    assert list(frame["spec hash"]) == [edited, builtin, edited, builtin]


def test_one_architecture_under_two_labels_is_one_line_named_by_its_newest_label(tmp_path):
    same = "cccccccc33333333"
    frame = stored_frame([result(same, 30.0, "00:00", label="SpineNet-49"),
                          result(same, 32.0, "01:00", label=LABEL)], tmp_path)
    assert [(trace.name, list(trace.y)) for trace in history_figure(frame).data] == [
        (f"{LABEL} #cccccccc @512", [30.0, 32.0])]


def test_a_head_is_a_series_of_its_own(tmp_path):
    same = "dddddddd44444444"
    frame = stored_frame([result(same, 30.0, "00:00"), result(same, 50.0, "01:00", head="retinanet")], tmp_path)
    assert sorted((trace.name, tuple(trace.y)) for trace in history_figure(frame).data) == [
        (f"{LABEL} #dddddddd @512", (30.0,)), (f"{LABEL} #dddddddd @512 + retinanet", (50.0,))]


def test_rows_stored_without_a_hash_stay_readable_keyed_by_their_label(tmp_path):
    old = [replace(result("", 20.0, "00:00"), label="SpineNet-49S"), replace(result("", 40.0, "01:00"))]
    frame = stored_frame(old, tmp_path)
    assert list(frame["spec"]) == ["", ""]
    assert sorted((trace.name, tuple(trace.y)) for trace in history_figure(frame).data) == [
        (f"{LABEL} @512", (40.0,)), ("SpineNet-49S @512", (20.0,))]


def test_legend_names_are_html_escaped(tmp_path):
    frame = stored_frame([result("eeeeeeee55555555", 10.0, "00:00", label="<b>x</b>")], tmp_path)
    assert history_figure(frame).data[0].name == "&lt;b&gt;x&lt;/b&gt; #eeeeeeee @512"


def test_one_result_gets_a_ten_minute_time_axis_not_sub_millisecond_ticks(tmp_path):
    frame = stored_frame([result("ffffffff66666666", 10.0, "30:00")], tmp_path)
    low, high = (pd.Timestamp(value) for value in history_figure(frame).layout.xaxis.range)
    assert (low, high) == (pd.Timestamp("2026-01-05 10:25:00"), pd.Timestamp("2026-01-05 10:35:00"))
    # Results seconds apart keep plotly's own range and ticks (tests/browser/test_browser_fit.py reads them).
    spread = stored_frame([result("ffffffff66666666", 10.0, "00:00"), result("ffffffff66666666", 11.0, "00:03")],
                          tmp_path / "two")
    assert history_figure(spread).layout.xaxis.range is None

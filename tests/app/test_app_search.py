"""The Search tab through AppTest with a real SQLite search file and real search threads: sampling the space plots
the EDFs of the samples (recomputed here with the library's sampler and the fast counter, and the references with
the counter on the built-ins); a tiny cost search runs to completion in the background, its table is the stored
candidates, its front is the brute-force Pareto front, and its best candidate opens in the editor; a search is
followed from a refresh of the same address, unseen from another workspace, cancelled, and resumed after a server
"kill" to the same candidates as an uninterrupted run; bad input is one line and keeps every value."""
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from spinescope.analysis.counting import count_model
from spinescope.analysis.search import (Constraints, SearchConfig, Store, candidate_metrics, create_run, make_space,
                                        run_search, sample_many)
from spinescope.analysis.search.space import MOVES
from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.spec import spec_from_dict
from app_runs import run

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def search_tab(app=None, **numbers):
    app = app or run(AppTest.from_file(str(APP), default_timeout=60))
    app.session_state["tab"] = "Search"
    run(app)
    for label, value in numbers.items():
        number(app, label).set_value(value)
    return run(app)


def number(app, label):
    return next(item for item in app.number_input if item.label == label)


def text(app, label):
    return next(item for item in app.text_input if item.label == label)


def click(app, label):
    next(item for item in app.button if item.label == label).click()
    return run(app)


def running(app):
    return any(item.label == "Cancel search" for item in app.button)


def wait(app, limit=60):
    started = time.monotonic()
    while running(app) and time.monotonic() - started < limit:
        time.sleep(0.3)
        run(app)
    assert not running(app), "the search did not end in time"


def plain(value):
    return re.sub(r"\\(.)", r"\1", value)


def plots(app):
    return {json.loads(item.proto.spec)["layout"]["title"]["text"]: json.loads(item.proto.spec)
            for item in app.get("plotly_chart")}


def status_line(app):
    return next(plain(item.value) for item in app.markdown if plain(item.value).startswith("Run run-"))


def the_run(home):
    store = Store(home / "search.sqlite")
    (only,) = store.runs()
    return store, only["id"]


def test_sampling_the_space_plots_the_distributions_beside_spinenet_and_resnet_fpn(home):
    app = search_tab(Samples=40)
    click(app, "Sample the space")
    assert not app.error
    assert any(plain(item.value).startswith("Population: 40 valid samples from ") for item in app.markdown)
    figure = plots(app)["The space's distributions (EDF: fraction of samples at or below)"]
    space = make_space("resnet50", MOVES, None, "retinanet", Constraints())
    samples, _ = sample_many(space, 40, 0)
    metrics = [candidate_metrics(spec, space) for spec, _ in samples]
    scales = {"macs": 1e9, "params": 1e6, **{f"rf_P{level}": 1 for level in range(3, 8)}}
    curves = {trace["meta"]: trace for trace in figure["data"] if trace["name"] == "population (40)"}
    assert sorted(curves) == sorted(scales)
    for key, scale in scales.items():
        assert curves[key]["x"] == pytest.approx(sorted(row[key] / scale for row in metrics))
        assert curves[key]["y"] == pytest.approx([(i + 1) / 40 for i in range(40)])
    for name, builtin in (("SpineNet-49", "spinenet-49"), ("ResNet-50-FPN", "resnet50-fpn")):
        marks = {trace["meta"]: trace["x"] for trace in figure["data"] if trace["name"] == name}
        macs = count_model(load_builtin(builtin), 640, "retinanet").macs("") / 1e9
        assert marks["macs"] == pytest.approx([macs, macs])
    summary = next(item.value for item in app.dataframe if "ResNet-50-FPN %" in item.value)
    macs_row = summary[summary["metric"] == "MACs (G multiply-adds)"].iloc[0]
    ordered = sorted(row["macs"] / 1e9 for row in metrics)
    resnet = count_model(load_builtin("resnet50-fpn"), 640, "retinanet").macs("") / 1e9
    assert macs_row["median"] == pytest.approx((ordered[19] + ordered[20]) / 2)
    assert macs_row["ResNet-50-FPN %"] == pytest.approx(100 * sum(value < resnet for value in ordered) / 40)
    assert [trace["x"][0] for trace in figure["data"] if trace["name"] == "ResNet-50-FPN"
            and trace["meta"] == "rf_P3"] == [443]  # the stride-8 level of ResNet-50: 443 px (counted by hand)


def test_a_tiny_search_runs_its_table_is_the_store_and_the_best_candidate_opens_in_the_editor(home):
    app = search_tab(**{"Budget (candidates)": 8})
    click(app, "Start search")
    wait(app)
    store, run_id = the_run(home)
    rows = store.candidates(run_id)
    assert len(rows) == 8 and all(row["status"] == "done" for row in rows)
    assert status_line(app).startswith(f"Run {run_id}: done, 8 of 8 candidates (0 failed); evolution, seed 0; "
                                       "objective: cost: P3 receptive field, pixels")
    frame = next(item.value for item in app.dataframe if "objective" in item.value)
    assert list(frame["idx"]) == [row["idx"] for row in rows]
    assert list(frame["objective"]) == pytest.approx([row["objective"] for row in rows])
    assert list(frame["GMACs"]) == pytest.approx([row["macs"] / 1e9 for row in rows])
    assert list(frame["P3 RF px"]) == [row["metrics"]["rf_P3"] for row in rows]
    scatter = plots(app)["MACs vs objective (every finished candidate)"]
    front = next(trace for trace in scatter["data"] if trace["name"].startswith("Pareto front"))
    pairs = [(row["macs"], row["objective"]) for row in rows]
    expected = sorted({(m / 1e9, o) for m, o in pairs
                       if not any(m2 <= m and o2 >= o and (m2, o2) != (m, o) for m2, o2 in pairs)})
    assert sorted(front["x"]) == pytest.approx([m for m, _ in expected])
    assert [o for _, o in sorted(zip(front["x"], front["y"]))] == pytest.approx([o for _, o in expected])
    best = min(rows, key=lambda row: (-row["objective"], row["idx"]))
    assert next(item for item in app.selectbox if item.label == "Candidate to open").value == best["idx"]
    click(app, "Open in editor")
    name = f"search-{run_id}-{best['idx']}"
    assert [plain(item.value) for item in app.success] == [
        f"Opened candidate {best['idx']} of run {run_id} as {name}; Explore and Edit show it."]
    current = WorkspaceStore(home / WORKSPACE_FILE).load(app.query_params["ws"]).current
    assert current == replace(spec_from_dict(best["spec"]), name=name)
    other = next(row for row in rows if row["idx"] != best["idx"])  # any candidate, not only the best
    app.session_state["tab"] = "Search"
    run(app)
    next(item for item in app.selectbox if item.label == "Candidate to open").set_value(other["idx"])
    click(app, "Open in editor")
    current = WorkspaceStore(home / WORKSPACE_FILE).load(app.query_params["ws"]).current
    assert current == replace(spec_from_dict(other["spec"]), name=f"search-{run_id}-{other['idx']}")
    click(app, "Undo")
    app.session_state["tab"] = "Edit"
    run(app)
    blocks = next(item for item in app.selectbox if item.label == "Block to edit").options
    assert list(blocks) == ["stem0", "stem1"] + [block["id"] for block in best["spec"]["blocks"]]


def test_a_search_is_followed_from_a_refresh_cancelled_and_resumed_after_a_kill(home):
    app = search_tab(**{"Budget (candidates)": 200})
    click(app, "Start search")
    workspace = app.query_params["ws"]
    refreshed = AppTest.from_file(str(APP), default_timeout=60)  # a new session on the same address
    refreshed.query_params["ws"] = workspace
    search_tab(run(refreshed))
    other = search_tab()  # another workspace
    assert other.query_params["ws"] != workspace and not running(other)
    assert not any(item.label == "Run" for item in other.selectbox)
    assert running(refreshed)
    click(refreshed, "Cancel search")
    wait(refreshed)
    store, run_id = the_run(home)
    stored = store.candidates(run_id)
    assert store.run(run_id)["status"] == "cancelled" and 0 < len(stored) < 200
    assert status_line(refreshed).startswith(f"Run {run_id}: cancelled, {len(stored)} of 200 candidates")
    store.set_status(run_id, "running")  # what a server killed mid-run leaves in the file
    after = AppTest.from_file(str(APP), default_timeout=60)
    after.query_params["ws"] = workspace
    search_tab(run(after))
    assert status_line(after).startswith(f"Run {run_id}: stopped (the server stopped while it ran), "
                                         f"{len(stored)} of 200")
    click(after, "Resume run")
    wait(after)
    rows = store.candidates(run_id)
    assert store.run(run_id)["status"] == "done" and len(rows) == 200
    assert [row["spec_hash"] for row in rows[:len(stored)]] == [row["spec_hash"] for row in stored]
    fresh = Store(home.parent / "fresh.sqlite")  # the same settings, never interrupted
    fresh_id = create_run(fresh, SearchConfig.from_dict(store.run(run_id)["config"]))
    run_search(fresh, fresh_id, workers=0)
    assert [row["spec_hash"] for row in fresh.candidates(fresh_id)] == [row["spec_hash"] for row in rows]


def test_bad_input_is_one_line_naming_the_value_and_keeps_the_form(home, tmp_path):
    app = search_tab(**{"Budget (candidates)": 5, "Random seed": 7})
    text(app, "Params range (M, LOW:HIGH)").set_value(":40")
    text(app, "MACs range (GMACs, LOW:HIGH)").set_value("8<b>0:x\x1b")
    run(app)
    click(app, "Start search")
    assert [plain(item.value) for item in app.error] == [
        "Not started: MACs range '8<b>0:x\\x1b' must be LOW:HIGH, LOW: or :HIGH (e.g. 80:100)"]
    assert text(app, "MACs range (GMACs, LOW:HIGH)").value == "8<b>0:x\x1b"
    assert text(app, "Params range (M, LOW:HIGH)").value == ":40"
    assert number(app, "Budget (candidates)").value == 5 and number(app, "Random seed").value == 7
    assert not Store(home / "search.sqlite").runs()
    text(app, "MACs range (GMACs, LOW:HIGH)").set_value("95:80")
    run(app)
    click(app, "Sample the space")
    assert [plain(item.value) for item in app.error] == ["Not sampled: MACs range '95:80': LOW is above HIGH"]
    text(app, "MACs range (GMACs, LOW:HIGH)").set_value("1:2")  # well formed, but nothing that small
    run(app)
    click(app, "Sample the space")
    (error,) = [plain(item.value) for item in app.error]
    assert error.startswith("Not sampled: no candidate met the constraints in 500 draws (MACs in [1, 2] GMACs")
    text(app, "MACs range (GMACs, LOW:HIGH)").set_value("")
    number(app, "Budget (candidates)").set_value(5000)
    run(app)
    click(app, "Start search")
    assert [plain(item.value) for item in app.error] == [
        "Not started: budget 5000 is out of range [1, 2,000] for the cost objective on this shared server (more "
        "with `spinescope search`)"]
    number(app, "Samples").set_value(9999)
    run(app)
    click(app, "Sample the space")
    assert [plain(item.value) for item in app.error] == [
        "Not sampled: samples 9999 is out of range [1, 1,000] on this shared server (more with `spinescope space "
        "--samples N`)"]
    number(app, "Budget (candidates)").set_value(4)
    next(item for item in app.selectbox if item.label == "Objective").set_value("proxy-ap")
    run(app)
    missing = str(tmp_path / "no<such>")
    text(app, "Dataset folder (COCO format)").set_value(missing)
    run(app)
    click(app, "Start search")
    assert [plain(item.value) for item in app.error] == [
        f"Not started: dataset folder {ascii(missing)} does not exist or is not a folder (make one with "
        "`spinescope make-dataset DIR`)"]
    (tmp_path / "empty").mkdir()
    text(app, "Dataset folder (COCO format)").set_value(str(tmp_path / "empty"))
    run(app)
    click(app, "Start search")
    (error,) = [plain(item.value) for item in app.error]
    assert error.startswith(f"Not started: dataset folder {ascii(str(tmp_path / 'empty'))} is not a COCO set: ")
    assert "annotations/train.json: no such file" in error
    assert text(app, "Params range (M, LOW:HIGH)").value == ":40" and number(app, "Random seed").value == 7
    assert not Store(home / "search.sqlite").runs()
    app.session_state["tab"] = "Explore"  # the values are kept in the workspace: back from another tab
    run(app)
    search_tab(app)
    assert text(app, "Params range (M, LOW:HIGH)").value == ":40"
    assert next(item for item in app.selectbox if item.label == "Objective").value == "proxy-ap"


@pytest.mark.slow
def test_a_tiny_proxy_ap_search_trains_each_candidate_on_a_coco_folder(home, tmp_path):
    from spinescope.analysis.training.dataset import make_dataset

    make_dataset(tmp_path / "shapes", images=4, val_images=2, size=64)
    app = search_tab(**{"Budget (candidates)": 2})
    next(item for item in app.selectbox if item.label == "Objective").set_value("proxy-ap")
    run(app)
    text(app, "Dataset folder (COCO format)").set_value(str(tmp_path / "shapes"))
    number(app, "Training steps").set_value(2)
    run(app)
    click(app, "Start search")
    wait(app, limit=240)
    store, run_id = the_run(home)
    rows = store.candidates(run_id)
    assert [row["status"] for row in rows] == ["done", "done"]
    assert all(row["metrics"]["train_steps"] == 2 and row["objective"] == row["metrics"]["proxy_ap"] for row in rows)
    assert status_line(app).startswith(f"Run {run_id}: done, 2 of 2 candidates (0 failed); evolution, seed 0; "
                                       "objective: proxy AP (short training on shapes), a proxy, not COCO AP")
    scatter = plots(app)["MACs vs objective (every finished candidate)"]
    assert scatter["layout"]["yaxis"]["title"]["text"].startswith("proxy AP (short training on shapes)")
    assert sorted(y for trace in scatter["data"] if trace["name"] == "sample" for y in trace["y"]) == \
        pytest.approx(sorted(row["objective"] for row in rows))


def test_the_open_spinenet_seeds_the_space_and_a_resnet_fpn_cannot(home):
    app = search_tab(Samples=5)
    seeds = next(item for item in app.selectbox if item.label == "Seed of the space")
    assert list(seeds.options) == ["ResNet-50's blocks", "the open spec (a SpineNet)"]
    seeds.set_value("current")
    run(app)
    click(app, "Sample the space")
    blocks = len(load_builtin("spinenet-49").blocks)
    assert any(plain(item.value).startswith(f"seed: SpineNet-49 ({blocks} scale-permuted blocks")
               for item in app.caption)
    next(item for item in app.selectbox if item.label == "Built-in architecture").set_value("resnet50-fpn")
    click(app, "Open")
    search_tab(app)
    seeds = next(item for item in app.selectbox if item.label == "Seed of the space")
    assert list(seeds.options) == ["ResNet-50's blocks"] and seeds.value == "resnet50"

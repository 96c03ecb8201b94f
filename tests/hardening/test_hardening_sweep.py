"""Sweeps sized before they are built: each comma list's text and item count are bounded, repeats are removed in
linear time, and models x sizes x batches x precisions is counted as a product before any spec is loaded or any
point built (the CLI's `sweep` and the app's Sweeps form, whose text is kept in the workspace). `--ray ADDRESS`:
the address is checked and the connection bounded; each problem is one line."""
from __future__ import annotations

import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from spinescope.analysis.cli import main
from spinescope.analysis.sweep import grid
from spinescope.analysis.sweep.grid import GridError, batches, input_sizes, precisions

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
# The example: sizes 32..2048 and batches 1..4096 (about 28 KB of text together).
ALL_SIZES = ",".join(str(n) for n in range(32, 2049))
ALL_BATCHES = ",".join(str(n) for n in range(1, 4097))


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPINESCOPE_RAY", raising=False)
    return tmp_path / "home"


def _one_line(message: str) -> str:
    assert "\n" not in message and message.isprintable(), message
    return message


@pytest.mark.parametrize("parse, text", [(input_sizes, ALL_SIZES), (batches, ALL_BATCHES),
                                         (input_sizes, ",".join(["640"] * 40_000)),
                                         (precisions, ",".join(["fp32"] * 40_000))])
def test_long_comma_lists_are_refused_before_parsing(parse, text):
    started = time.perf_counter()
    with pytest.raises(GridError) as info:
        parse(text)
    assert time.perf_counter() - started < 0.05
    assert "more than 2,000" in _one_line(str(info.value))


def test_item_count_is_bounded_and_repeats_go_in_linear_time():
    with pytest.raises(GridError, match=r"more than 128 values"):
        batches(",".join(["1"] * 129))  # 257 characters: under the text bound, over the item bound
    assert batches(",".join(["2", "1"] * 64)) == [2, 1]
    assert input_sizes("64," * 127 + "1333x800") == [(64, 64), (800, 1333)]
    values = list(range(200_000)) * 2
    started = time.perf_counter()
    assert grid._distinct(values) == list(range(200_000))
    assert time.perf_counter() - started < 0.5  # a list's `in` test made this 2 x 10^10 comparisons


def test_points_are_counted_as_a_product_before_any_point_is_built(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a point was built before the grid was counted")

    monkeypatch.setattr(grid, "Point", never)
    sizes = list(range(64, 64 + 128))
    with pytest.raises(GridError) as info:
        grid.grid_points([("x", None, None)] * 100, sizes, list(range(1, 129)), ["fp32", "bf16", "fp16"])
    assert _one_line(str(info.value)).startswith("4,915,200 points (100 model(s) x 128 size(s) x 128 batch(es) x 3 "
                                                 "precision(s)) is more than 4,096")


def test_cli_sweep_counts_before_loading_any_spec(monkeypatch, capsys):
    from spinescope.analysis.sweep import cli as sweep_cli

    def never(text, *args, **kwargs):
        raise AssertionError(f"spec {text!r} loaded before the grid was counted")

    monkeypatch.setattr(sweep_cli, "load_spec_argument", never)
    sizes = ",".join(str(n) for n in range(64, 128))
    many = ",".join(str(n) for n in range(1, 65))
    status = main(["sweep", "spinenet-49s", "resnet50-fpn", "--input-size", sizes, "--batch", many,
                   "--precision", "fp32,bf16", "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert err == ("error: 16,384 points (2 model(s) x 64 size(s) x 64 batch(es) x 2 precision(s)) is more than "
                   "4,096; use fewer models, sizes, batches or precisions\n")


def test_cli_sweep_long_text_is_one_line(monkeypatch, capsys):
    from spinescope.analysis.sweep import cli as sweep_cli

    monkeypatch.setattr(sweep_cli, "load_spec_argument", lambda *args: pytest.fail("the text was accepted"))
    assert main(["sweep", "spinenet-49s", "--input-size", ALL_SIZES, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --input-size: input sizes: the text is 9," in err


def test_form_counts_before_loading_a_spec(monkeypatch):
    from spinescope.app import sweep_tab

    def never(choice):
        raise AssertionError(f"{choice!r} loaded before the grid was counted")

    monkeypatch.setattr(sweep_tab, "_spec_for", never)
    state = SimpleNamespace(sweep_models=[f"m{i}" for i in range(30)], sweep_precisions=["fp32", "bf16"],
                            sweep_sizes=",".join(str(n) for n in range(64, 128)),
                            sweep_batches=",".join(str(n) for n in range(1, 65)))
    with pytest.raises(GridError) as info:
        sweep_tab.grid_from(state)
    assert _one_line(str(info.value)).startswith("245,760 points (30 model(s) x 64 size(s) x 64 batch(es) x 2 "
                                                 "precision(s)) is more than 64;")


def test_form_text_is_bounded_in_the_page_and_in_the_workspace(spinescope_home):
    home = spinescope_home
    from streamlit.testing.v1 import AppTest

    from spinescope.app.workspace import WorkspaceStore
    from app_runs import run

    app = run(AppTest.from_file(MAIN, default_timeout=60))
    app.session_state["tab"] = "Sweeps"
    run(app)
    texts = {item.label: item for item in app.text_input}
    texts["Input sizes (px, comma list)"].set_value(ALL_SIZES + "," + ALL_BATCHES)  # 28 KB
    started = time.perf_counter()
    run(app)
    assert time.perf_counter() - started < 20
    ready = [item.value for item in app.caption if "Not ready" in item.value]
    assert len(ready) == 1 and "\n" not in ready[0]
    store = WorkspaceStore(home / "workspace.sqlite")
    workspace = app.session_state["workspace_id"]
    kept = store.settings(workspace).get("sweep", {}).get("sweep_sizes", "")
    assert len(kept) <= 2000
    # A workspace that already holds a long text (an older version kept it): the next visitor gets the default.
    settings = store.settings(workspace)
    settings["sweep"] = {**settings.get("sweep", {}), "sweep_sizes": ALL_SIZES * 2}
    store.save_settings(workspace, settings)
    visitor = AppTest.from_file(MAIN, default_timeout=60)
    visitor.query_params["ws"] = workspace
    visitor.session_state["tab"] = "Sweeps"
    run(visitor)
    assert next(item.value for item in visitor.text_input if item.label.startswith("Input sizes")) == "128,192,256"


# --ray ADDRESS ---------------------------------------------------------------------------------------------------

SWEEP = ["sweep", "spinenet-mobile-49xs", "--input-size", "64", "--iters", "1", "--warmup", "0", "--no-save"]


def _cli(args: list[str], home: Path, timeout: float = 60) -> tuple[int, str, float]:
    """Runs `spinescope ARGS` in a fresh process; returns (status, stderr, seconds). A hang fails the test."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, SPINESCOPE_HOME=str(home))
    env.pop("SPINESCOPE_RAY", None)
    env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "spinescope", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, env=env)
    return result.returncode, result.stderr, time.monotonic() - started


def _unused_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("address, problem", [
    ("not an address", "Ray address 'not an address' is not 'local', 'auto', HOST:PORT or ray://HOST:PORT"),
    ("10.0.0.5:99999", "Ray address '10.0.0.5:99999': port 99999 is out of range [1, 65535]"),
    ("10.0.0.5:0", "Ray address '10.0.0.5:0': port 0 is out of range [1, 65535]"),
    ("10.0.0.5:\uff16\uff13\uff17\uff19", "Ray address '10.0.0.5:\\uff16\\uff13\\uff17\\uff19' is not"),
    ("ray://host\x1b[31m:10001", "Ray address 'ray://host\\x1b[31m:10001' is not"),
    ("http://10.0.0.5:6379", "Ray address 'http://10.0.0.5:6379' is not"),
])
def test_malformed_ray_address_is_one_line(spinescope_home, address, problem):
    status, err, _ = _cli([*SWEEP, "--ray", address], spinescope_home)
    assert status == 2 and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --ray (or SPINESCOPE_RAY): {problem}") and err.isascii()


def test_ray_client_address_without_the_client_names_the_extra(monkeypatch, capsys):
    from spinescope.analysis.sweep import ray_runner

    monkeypatch.setattr(ray_runner, "client_installed", lambda: False)
    monkeypatch.setattr(ray_runner, "require", lambda name: pytest.fail("Ray was asked before the address was "
                                                                        "checked"))
    assert main([*SWEEP, "--ray", "ray://10.0.0.5:10001"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --ray (or SPINESCOPE_RAY): Ray address 'ray://10.0.0.5:10001' needs Ray's client, which is "
                   "not installed: pip install 'ray[client]' (or give the cluster's HOST:PORT, e.g. 10.0.0.5:6379, "
                   "from one of its nodes)\n")


def test_client_installed_is_whether_grpc_imports():
    import importlib.util

    from spinescope.analysis.sweep.ray_runner import client_installed

    assert client_installed() == (importlib.util.find_spec("grpc") is not None)


def test_unreachable_ray_address_is_one_line_in_seconds(spinescope_home):
    port = _unused_loopback_port()
    status, err, seconds = _cli([*SWEEP, "--ray", f"127.0.0.1:{port}"], spinescope_home)
    assert status == 2 and seconds < 30
    assert err.splitlines() == [f"error: cannot use the Ray cluster '127.0.0.1:{port}': cannot reach a Ray cluster "
                                f"at '127.0.0.1:{port}' within 5 s: Connection refused"]


@pytest.mark.parametrize("answer, problem", [(None, "no answer (not a Ray cluster's port?)"),
                                             (b"HTTP/1.1 400 Bad Request\r\n\r\n",
                                              "the server there does not speak gRPC (not a Ray cluster's port?)")])
def test_a_port_that_is_not_ray_is_one_line_in_seconds(spinescope_home, answer, problem):
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    accepted = []

    def serve():
        try:
            while True:
                connection, _ = server.accept()
                accepted.append(connection)  # kept open: a silent server never answers nor closes
                if answer is not None:
                    connection.recv(1024)
                    connection.sendall(answer)
        except OSError:
            return

    threading.Thread(target=serve, daemon=True).start()
    try:
        status, err, seconds = _cli([*SWEEP, "--ray", f"127.0.0.1:{port}"], spinescope_home, timeout=90)
    finally:
        server.close()
        for connection in accepted:
            connection.close()
    assert status == 2 and seconds < 30 and accepted
    assert err.splitlines() == [f"error: cannot use the Ray cluster '127.0.0.1:{port}': cannot reach a Ray cluster "
                                f"at '127.0.0.1:{port}' within 5 s: {problem}"]


class _ClusterWithoutGpu:
    """A connected Ray stand-in whose cluster has CPUs only; submitting a task fails the test (on a real cluster
    a task asking for a GPU waits forever)."""

    def __init__(self):
        self.shut_down = False

    def cluster_resources(self):
        return {"CPU": 8.0, "memory": 2.0 ** 34}

    def remote(self, **kwargs):
        pytest.fail(f"a task was submitted ({kwargs}) to a cluster without a GPU")

    def shutdown(self):
        self.shut_down = True


def test_device_cuda_on_a_cluster_without_gpu_is_refused_before_submitting(monkeypatch, capsys):
    from spinescope.analysis.sweep import ray_runner
    from spinescope.analysis.sweep.grid import RunOptions, grid_points
    from spinescope.spinenet.builtins import load_builtin

    cluster = _ClusterWithoutGpu()
    monkeypatch.setattr(ray_runner, "connect", lambda address: cluster)
    points = grid_points([("xs", load_builtin("spinenet-mobile-49xs"), None)], [64], [1], ["fp32"])
    with pytest.raises(ray_runner.RayClusterError, match=r"^--device cuda, but the Ray cluster has no GPU"):
        ray_runner.run_on_ray(points, RunOptions(device="cuda"), address="10.0.0.5:6379")
    assert main([*SWEEP, "--ray", "10.0.0.5:6379", "--device", "cuda"]) == 2
    assert capsys.readouterr().err == (
        "error: cannot use the Ray cluster '10.0.0.5:6379': --device cuda, but the Ray cluster has no GPU (its "
        "resources list none); use --device cpu, or auto to use GPUs where there are some\n")

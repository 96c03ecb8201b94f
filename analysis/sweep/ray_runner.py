"""A sweep on a Ray cluster: every grid point is a Ray task that runs its own latency job (its own worker
process), with `num_gpus=1` on a GPU (one point per GPU at a time) or `num_cpus=1` per CPU worker. Results stream
back as tasks finish (`ray.wait`). Ray retries a task once when its worker process or node is lost
(`max_retries=1`); a point that fails again, or whose run fails, is reported with its error, never dropped.

    ray.init(address)  # or let `run_on_ray` connect: address "auto", "ray://host:10001", or "local"
    records, failures, warning = run_on_ray(points, options, address=...)

Connecting to a cluster (an address other than "local") ships SpineScope with the job (`runtime_env`: the
repository as its working directory from a checkout, the installed package as a module otherwise), so the nodes
need only the same Python packages (requirements.txt).

Before Ray is asked anything, the address is checked (`check_address`: 'local', 'auto', HOST:PORT or
ray://HOST:PORT, a port in 1..65535; ray:// only where Ray's client is installed) and, for a remote address, a
gRPC server must answer on it within PROBE_TIMEOUT_S seconds (`probe`): an unreachable or wrong address is one line
in seconds, never Ray's own retry loop and its C++ warnings. `--device cuda` on a cluster without a GPU is refused
before any task is submitted (such a task would wait forever).
"""
from __future__ import annotations

import logging
import os
import re
import socket
import threading
from pathlib import Path

import spinescope
from spinescope.extras import require
from spinescope.analysis.sweep.grid import Point, RunOptions, point_record, request_for
from spinescope.spinenet.input_size import size_to_json

ADDRESS_VARIABLE = "SPINESCOPE_RAY"
EXCLUDES = [".git", ".venv", "**/__pycache__", "docs", "tests/browser", "*.sqlite"]
PROBE_TIMEOUT_S = 5.0  # name lookup, TCP connect and the gRPC server's first answer, together
MAX_ADDRESS = 300
CLIENT_EXTRA = "pip install 'ray[client]'"
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]")
_PORT = re.compile(r"[0-9]{1,5}")
# An HTTP/2 client's connection preface and an empty SETTINGS frame; any gRPC server (Ray's GCS and its client
# server are gRPC) answers with a frame of its own, its SETTINGS first.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


class RayAddressError(ConnectionError):
    """A Ray address that is malformed, unusable here or not answering; str() is one line with the value escaped."""


class RayClusterError(RuntimeError):
    """A cluster that cannot run this sweep (e.g. `--device cuda` without a GPU); str() is one line."""


def check_address(address: str) -> tuple[str, str | None, int | None]:
    """Returns (kind, host, port) of a Ray address: ('local', None, None), ('auto', None, None), ('gcs', host,
    port) for HOST:PORT, ('client', host, port) for ray://HOST:PORT. Raises RayAddressError (one line, the value
    escaped) for anything else, and for ray:// when Ray's client (`ray[client]`) is not installed."""
    text = str(address)
    shown = ascii(text[:80]) + ("..." if len(text) > 80 else "")
    if text in ("local", "auto"):
        return text, None, None
    if len(text) > MAX_ADDRESS:
        raise RayAddressError(f"Ray address {shown} is {len(text):,} characters, more than {MAX_ADDRESS}")
    kind, rest = ("client", text[len("ray://"):]) if text.startswith("ray://") else ("gcs", text)
    host, colon, port_text = rest.rpartition(":")
    if not colon or not _HOST.fullmatch(host) or not _PORT.fullmatch(port_text):
        raise RayAddressError(f"Ray address {shown} is not 'local', 'auto', HOST:PORT or ray://HOST:PORT (e.g. "
                              "10.0.0.5:6379 or ray://10.0.0.5:10001)")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise RayAddressError(f"Ray address {shown}: port {port} is out of range [1, 65535]")
    if kind == "client" and not client_installed():
        raise RayAddressError(f"Ray address {shown} needs Ray's client, which is not installed: {CLIENT_EXTRA} "
                              "(or give the cluster's HOST:PORT, e.g. 10.0.0.5:6379, from one of its nodes)")
    return kind, host.strip("[]"), port


def client_installed() -> bool:
    """Whether `ray.init('ray://...')` can work here: Ray's client needs grpc (the `ray[client]` extra)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray.util.client") is not None and importlib.util.find_spec("grpc") is not None
    except (ImportError, ValueError):
        return False


def probe(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Checks that a gRPC server answers at host:port within `timeout` seconds (name lookup included); raises
    RayAddressError with one line otherwise. TLS clusters (RAY_USE_TLS) are only checked to accept a connection."""
    outcome: dict = {}

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout) as connection:
                if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                    outcome["ok"] = True
                    return
                connection.sendall(_H2_PREFACE)
                header = b""
                while len(header) < 9:
                    chunk = connection.recv(9 - len(header))
                    if not chunk:
                        break
                    header += chunk
                outcome["ok"] = len(header) == 9 and header[3] == 0x4  # an HTTP/2 SETTINGS frame
                if not outcome["ok"]:
                    outcome["error"] = "the server there does not speak gRPC (not a Ray cluster's port?)"
        except socket.timeout:
            outcome["error"] = "no answer (not a Ray cluster's port?)"
        except socket.gaierror as error:
            outcome["error"] = f"unknown host ({error.strerror or error})"
        except OSError as error:
            outcome["error"] = error.strerror or type(error).__name__

    thread = threading.Thread(target=attempt, daemon=True, name="ray-probe")
    thread.start()
    thread.join(timeout + 0.5)  # a name lookup is not bounded by the socket's timeout
    if not outcome.get("ok"):
        problem = outcome.get("error", "no answer")
        raise RayAddressError(f"cannot reach a Ray cluster at {ascii(f'{host}:{port}')} within {timeout:g} s: "
                              f"{problem}")


def _auto_address() -> tuple[str, int] | None:
    """Returns (host, port) of the cluster 'auto' finds (RAY_ADDRESS, else the one started last on this machine),
    or None when Ray's lookup is not available; raises RayAddressError when it finds none."""
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return None
    try:
        found = canonicalize_bootstrap_address("auto")
    except Exception as error:  # noqa: BLE001 - Ray says why in its first line
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RayAddressError(f"Ray address 'auto' found no running cluster: {first[:200]} (start one with `ray "
                              "start --head`, or give HOST:PORT)") from None
    if not found or found.startswith("ray://"):
        return None
    host, _, port = found.rpartition(":")
    return (host, int(port)) if _PORT.fullmatch(port) else None


def _measure_point(point: Point, options: RunOptions):
    """Runs in a Ray worker: one latency job for one point; returns its LatencyResult (not saved here)."""
    from spinescope.analysis.latency.job import LatencyJob

    threads = options.threads or (None if options.device == "cuda" else 1)
    job = LatencyJob([request_for(point, options)], device=options.device, threads=threads, iters=options.iters,
                     warmup=options.warmup, timeout=options.timeout, per_block=options.per_block)
    return job.start().result()[0]


def connect(address: str | None):
    """Connects to Ray unless already connected: `address` 'local' starts a local cluster on this machine. Any
    other address is checked (`check_address`) and must answer (`probe`) before `ray.init` is called. Raises
    RayAddressError (a ConnectionError) with one line."""
    if address not in (None, "", "local"):
        kind, host, port = check_address(address)
    ray = require("ray")

    if ray.is_initialized():
        return ray
    if address in (None, "", "local"):
        ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
                 logging_level=logging.ERROR)
        return ray
    if kind == "auto":
        found = _auto_address()
        if found is not None:
            probe(*found)
    else:
        probe(host, port)
    ray.init(address=address, log_to_driver=False, runtime_env=runtime_env(), logging_level=logging.ERROR)
    return ray


def check_cluster(ray, device: str) -> None:
    """Raises RayClusterError (one line) when the cluster cannot run points on `device`: 'cuda' needs a GPU, and
    a task asking for one on a cluster without any would wait forever."""
    if device == "cuda" and not ray.cluster_resources().get("GPU", 0) > 0:
        raise RayClusterError("--device cuda, but the Ray cluster has no GPU (its resources list none); use "
                              "--device cpu, or auto to use GPUs where there are some")


def runtime_env() -> dict:
    """Returns the Ray runtime_env that ships SpineScope to a cluster's nodes."""
    if spinescope.CHECKOUT:
        return {"working_dir": str(spinescope.PACKAGE_PARENT), "excludes": EXCLUDES}
    return {"py_modules": [str(Path(spinescope.__file__).parent)], "excludes": ["**/__pycache__"]}


def run_on_ray(points: list[Point], options: RunOptions, *, address: str | None = None, on_point=None,
               save: bool = True, gpu: bool | None = None,
               measure=_measure_point) -> tuple[list[dict], list[dict], str | None]:
    """Submits one task per point and collects them as they finish; stores each result in the history (on the
    driver, when `save`) and calls `on_point(record)` as each arrives. Returns (records in grid order, failures:
    one {spec, input_size, batch, precision, error} per point that failed after its retry, None or the first
    one-line warning that the history could not be written).
    `measure(point, options)` is what each task runs (a LatencyResult); only tests pass another one (one that
    kills its own worker process, to check the retry), never a user."""
    ray = connect(address)
    from ray.exceptions import RayError, RayTaskError

    check_cluster(ray, options.device)
    if gpu is None:
        gpu = options.device == "cuda" or (options.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)
    resources = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": 1}
    task = ray.remote(max_retries=1, retry_exceptions=False, **resources)(measure)
    pending = {task.remote(point, options): point for point in points}
    done: dict[tuple, dict] = {}
    failures, warning = [], None
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            point = pending.pop(ref)
            try:
                result = ray.get(ref)
            except RayTaskError as error:  # the run itself failed (refused, out of memory, crashed)
                cause = error.cause if error.cause is not None else error
                failures.append(_failure(point, cause))
                continue
            except RayError as error:  # the worker or its node was lost twice
                failures.append(_failure(point, error))
                continue
            if save:
                from spinescope.analysis.latency.history import save_results

                (result,), not_saved = save_results([result])
                warning = warning or not_saved
            done[point.key] = point_record(point, result, options)
            if on_point is not None:
                on_point(done[point.key])
    return [done[point.key] for point in points if point.key in done], failures, warning


def _failure(point: Point, error: BaseException) -> dict:
    text = str(error).strip().splitlines()
    return {"spec": point.spec_arg, "input_size": size_to_json(point.input_size), "batch": point.batch,
            "precision": point.precision, "error": f"{type(error).__name__}: {text[-1] if text else ''}"[:300]}

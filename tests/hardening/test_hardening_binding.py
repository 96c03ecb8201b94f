"""The server binds to 127.0.0.1 however it is started: `streamlit run /abs/path/app/main.py` from another directory
reads the project's config next to the script (before the fix it listened on every interface with usage statistics
on); an address forced to all interfaces makes the app refuse to serve."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "app" / "main.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(pid: int, port: int, seconds: float = 90) -> set[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        addresses = {c.laddr.ip for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
        if addresses:
            return addresses
        if not psutil.pid_exists(pid):
            break
        time.sleep(0.5)
    return set()


def _start(tmp_path, *extra, env_extra=None):
    port = _free_port()
    env = dict(os.environ, SPINESCOPE_HOME=str(tmp_path / "home"), HOME=str(tmp_path))  # no ~/.streamlit config
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    env.update(env_extra or {})
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(MAIN), "--server.port", str(port),
                                *extra], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    return process, port


def _stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_streamlit_run_from_another_directory_listens_on_loopback_only(tmp_path):
    process, port = _start(tmp_path)
    try:
        addresses = _listening(process.pid, port)
        assert addresses == {"127.0.0.1"}, addresses
        import urllib.request
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10).read()
        assert page == b"ok"
    finally:
        _stop(process)
    output = process.stdout.read().decode(errors="replace")
    assert "0.0.0.0" not in output and "Network URL" not in output, output


def test_forced_public_address_is_refused_by_the_app(tmp_path):
    """STREAMLIT_SERVER_ADDRESS=0.0.0.0 overrides any config file; the app then serves nothing but the refusal."""
    from streamlit.testing.v1 import AppTest
    from streamlit import config

    app = AppTest.from_file(str(MAIN), default_timeout=60)
    previous = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        app.run()
    finally:
        config.set_option("server.address", previous)
    assert not app.exception
    assert [e.value for e in app.error] and "serves 127.0.0.1 only" in app.error[0].value
    assert not app.tabs


def test_spinescope_app_listens_on_loopback_and_stops_with_its_own_pid(tmp_path):
    """`spinescope app` from another directory: 127.0.0.1 only; a SIGTERM to the pid it was started as (not its
    process group) stops the server and leaves no process behind."""
    port = _free_port()
    env = dict(os.environ, SPINESCOPE_HOME=str(tmp_path / "home"), HOME=str(tmp_path))
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    process = subprocess.Popen([sys.executable, "-m", "spinescope", "app", "--port", str(port)], cwd=tmp_path,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _listening(process.pid, port) == {"127.0.0.1"}
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _listening(process.pid, port, seconds=0.5) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(c.laddr.port == port for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN)
    finally:
        _stop(process) if process.poll() is None else None
        for child in [p for p in psutil.process_iter(["cmdline"]) if str(port) in " ".join(p.info["cmdline"] or [])]:
            child.kill()

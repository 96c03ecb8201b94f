"""Workspace ids are the server's: a `?ws=` id the server did not issue (a client-chosen '000...0', one from another
server, one removed) opens a fresh random workspace with a one-line note, never a workspace under the chosen id.
The browser-id cookie set by the server (app/serve.py, `app.browser_cookie`) is HttpOnly."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from spinescope.app.workspace import WorkspaceStore, is_workspace_id

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
ZEROS = "0" * 32


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    return tmp_path


def _open(query: str | None):
    from app_runs import run

    app = AppTest.from_file(MAIN, default_timeout=60)
    if query is not None:
        app.query_params["ws"] = query
    return run(app)


@pytest.mark.parametrize("chosen", [ZEROS, "f" * 32, "0123456789abcdef" * 2])
def test_a_client_chosen_workspace_id_gets_a_fresh_workspace_and_a_note(spinescope_home, chosen):
    app = _open(chosen)
    given = app.session_state["workspace_id"]
    assert given != chosen and is_workspace_id(given) and app.query_params["ws"] == given
    store = WorkspaceStore(spinescope_home / "workspace.sqlite")
    assert not store.exists(chosen) and store.exists(given)
    notes = [item.value for item in app.warning]
    assert notes == [f"The workspace in the address \\('{chosen}'\\) is not one this server started, or it was "
                     "removed; this is a new workspace\\."]


def test_a_malformed_workspace_id_is_named_escaped(spinescope_home):
    app = _open("<b>\x1b" + "9" * 60)
    assert [item.value for item in app.warning] == [
        "The workspace in the address \\('\\<b\\>\\\\x1b" + "9" * 36 + "'\\.\\.\\.\\) is not one this server "
        "started, or it was removed; this is a new workspace\\."]


def test_an_issued_workspace_id_opens_its_workspace(spinescope_home):
    first = _open(None)
    issued = first.session_state["workspace_id"]
    again = _open(issued)
    assert again.session_state["workspace_id"] == issued and not again.warning


def _asgi_call(middleware_app, path="/", headers=(), content_type=b"text/html; charset=utf-8", kind="http"):
    """Runs one request through the middleware around a tiny app answering `content_type`; returns the response
    headers (or the scope the inner app saw, for a websocket)."""
    from spinescope.app.browser_cookie import BrowserIdCookie

    seen, sent = {}, []

    async def inner(scope, receive, send):
        seen["scope"] = scope
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
            await send({"type": "http.response.body", "body": b"ok"})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    scope = {"type": kind, "path": path, "headers": list(headers)}
    # In a thread of its own: the real-browser tests' Playwright may hold this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, BrowserIdCookie(inner)(scope, receive, send)).result()
    return [header for message in sent if message["type"] == "http.response.start" for header in message["headers"]]


def _cookies(headers) -> list[str]:
    return [value.decode() for name, value in headers if name == b"set-cookie"]


def test_the_server_sets_the_browser_id_httponly():
    from spinescope.app import session

    first = _cookies(_asgi_call(None))
    assert len(first) == 1
    name_value, *attributes = [part.strip() for part in first[0].split(";")]
    name, value = name_value.split("=")
    assert name == session.BROWSER_COOKIE and is_workspace_id(value)
    assert set(attributes) == {"Path=/", f"Max-Age={400 * 86400}", "HttpOnly", "SameSite=Strict"}
    # A browser that sent an id (also one a script set before, readable by scripts) gets the same id, HttpOnly.
    sent = [(b"cookie", f"other=1; {session.BROWSER_COOKIE}={value}".encode())]
    assert _cookies(_asgi_call(None, headers=sent)) == first
    forged = [(b"cookie", f"{session.BROWSER_COOKIE}=not-an-id".encode())]
    assert _cookies(_asgi_call(None, headers=forged))[0].split(";")[0] != f"{session.BROWSER_COOKIE}=not-an-id"
    assert _cookies(_asgi_call(None, content_type=b"application/javascript")) == []  # only page responses


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_real_server_from_serve_py_sends_the_cookie_httponly(tmp_path):
    port = _free_port()
    env = dict(os.environ, SPINESCOPE_HOME=str(tmp_path / "home"))
    command = [sys.executable, "-m", "streamlit", "run", "app/serve.py", "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true"]
    log = open(tmp_path / "server.log", "wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            cookies = response.headers.get_all("Set-Cookie")
            assert response.status == 200 and "text/html" in response.headers["Content-Type"]
        assert len(cookies) == 1 and cookies[0].startswith("spinescope_browser=") and "; HttpOnly" in cookies[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app/static/package.json", timeout=10) as response:
            assert response.status == 200 and response.headers.get_all("Set-Cookie") is None
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()

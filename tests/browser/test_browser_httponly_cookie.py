"""The app served through app/serve.py in a real browser: the browser-id cookie comes from the server, HttpOnly
(page scripts cannot read it, no script sets another), and it is the id the app uses: both tabs' workspaces
are stored as this browser's."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser_settings import TIMEOUT_MS, VIEWPORT
from page_helpers import open_app, workspace_of

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeServer:
    """`streamlit run app/serve.py` (st.App with the cookie middleware) on a free 127.0.0.1 port."""

    def __init__(self, home: Path):
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, SPINESCOPE_HOME=str(home))
        self.log = open(home.parent / f"serve-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/serve.py", "--server.address", "127.0.0.1",
             "--server.port", str(self.port), "--server.headless", "true"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            assert self.process.poll() is None, "the server exited"
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2):
                    return
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.3)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def serve_server(tmp_path):
    server = ServeServer(tmp_path / "home")
    yield server
    server.stop()


def test_the_browser_id_cookie_is_httponly_and_is_the_apps(browser, serve_server):
    context = browser.new_context(viewport=VIEWPORT)
    try:
        first = context.new_page()
        first.set_default_timeout(TIMEOUT_MS)
        open_app(first, serve_server)
        cookies = [cookie for cookie in context.cookies() if cookie["name"] == "spinescope_browser"]
        assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
        assert "spinescope_browser" not in first.evaluate("document.cookie")  # scripts cannot read it
        second = context.new_page()
        second.set_default_timeout(TIMEOUT_MS)
        open_app(second, serve_server)
        expect(second.locator("[data-testid='stSidebar']")).to_contain_text("Recent workspaces")
        with sqlite3.connect(serve_server.home / "workspace.sqlite") as connection:
            owners = dict(connection.execute("SELECT id, owner FROM workspaces").fetchall())
        # Both tabs' workspaces belong to the cookie's id: the server read the HttpOnly cookie as the browser id.
        assert owners == {workspace_of(first): cookies[0]["value"], workspace_of(second): cookies[0]["value"]}
        after = [cookie for cookie in context.cookies() if cookie["name"] == "spinescope_browser"]
        assert after == cookies  # the same id, still HttpOnly: no script wrote another
    finally:
        context.close()

"""A real `streamlit run` server on a free 127.0.0.1 port with a temporary SPINESCOPE_HOME, and Debian's
Chromium driven by Playwright (never a downloaded browser). A failing test leaves a screenshot in $SPINESCOPE_TEST_ARTIFACTS (default: the temp dir)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
# Screenshots of failing tests go outside the repository (tests never write into it).
ARTIFACTS = Path(os.environ.get("SPINESCOPE_TEST_ARTIFACTS", Path(tempfile.gettempdir()) / "spinescope-test-artifacts"))
# A loaded 2-core machine can take many seconds for a rerun; assertions wait for it (the default is 5 s).
from browser_settings import TIMEOUT_MS, VIEWPORT  # noqa: E402
expect.set_options(timeout=TIMEOUT_MS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    """The app as `spinescope app` (and so `make run`) serves it, `streamlit run app/serve.py` (the server sets the
    browser-id cookie, HttpOnly), on its own port and data directory; `script` "app/main.py" serves the page script
    alone."""

    def __init__(self, home: Path, port: int | None = None, options: tuple[str, ...] = (),
                 script: str = "app/serve.py"):
        self.home = home
        self.script = script
        self.options = options  # more `streamlit run` options, e.g. ("--server.enableStaticServing", "false")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = home.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 60) -> "AppServer":
        env = dict(os.environ, SPINESCOPE_HOME=str(self.home))
        command = [sys.executable, "-m", "streamlit", "run", self.script, "--server.address", "127.0.0.1",
                   "--server.port", str(self.port), "--server.headless", "true", *self.options]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not answer on {self.url} within {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stops the server (SIGKILL to simulate a crash) and its process group."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    app = AppServer(tmp_path_factory.mktemp("spinescope") / "home").start()
    yield app
    app.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def context(browser):
    """One browser context for the run, so the app's scripts are fetched once (each page still gets its own
    Streamlit session and, without a `ws` in its address, its own workspace)."""
    shared = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    shared.set_default_timeout(TIMEOUT_MS)
    yield shared
    shared.close()


@pytest.fixture
def page(context, request):
    """A new page (a new browser tab: its own Streamlit session) per test; a screenshot if the test fails."""
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        except Exception as error:  # noqa: BLE001 - the test's own failure matters more
            print(f"screenshot failed: {error}")
    tab.close()

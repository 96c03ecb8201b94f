"""The wheel as a user gets it: built from a copy of the checkout (which the build leaves as it was), installed with
pip into a fresh venv, and used from another folder that holds a user's own `app/`, `analysis/`, `spinenet.py` and
`assets/`. It adds exactly one import name, `spinescope`; the command, the API and `spinescope app` (a real server in
Debian's Chromium: the project's config, the plotly bundle, nothing fetched from any other host) all work there.

The fresh venv takes its third-party packages (torch, streamlit, ...) from the test's own environment through a .pth
file, so that nothing but SpineScope itself is installed into it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path("app/static/node_modules/plotly.js-basic-dist-min/plotly-basic.min.js")
# What a user might well have in the folder they work in; none of it may shadow SpineScope's parts.
USER_FILES = {"app/__init__.py": "raise RuntimeError('the user app')\n",
              "analysis/__init__.py": "raise RuntimeError('the user analysis')\n",
              "spinenet.py": "raise RuntimeError('the user spinenet')\n", "assets/specs/spinenet-49.yaml": "{}\n"}


def run(command, cwd, env=None, timeout=300):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of the checkout's tracked files, plus the plotly bundle when `make setup` installed it."""
    copy = tmp_path_factory.mktemp("clone") / "spinescope"
    tracked = run(["git", "ls-files", "-z"], ROOT).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file() and not name.startswith("tests/"):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name, follow_symlinks=False)
    if (ROOT / BUNDLE).is_file():
        (copy / BUNDLE).parent.mkdir(parents=True)
        shutil.copy2(ROOT / BUNDLE, copy / BUNDLE)
    return copy


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    before = sorted(str(path.relative_to(source)) for path in source.rglob("*"))
    out = tmp_path_factory.mktemp("dist")
    built = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                 "-w", str(out), str(source)], source)
    assert built.returncode == 0, built.stderr[-3000:]
    after = sorted(str(path.relative_to(source)) for path in source.rglob("*") if "__pycache__" not in path.parts)
    assert after == before  # no build/, no *.egg-info left in the clone
    return next(out.glob("spinescope-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed by pip; its other packages come from this environment (a .pth)."""
    home = tmp_path_factory.mktemp("venv") / "fresh"
    assert run([sys.executable, "-m", "venv", "--without-pip", str(home)], home.parent).returncode == 0
    site = Path(run([str(home / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    home.parent).stdout.strip())
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run([sys.executable, "-m", "pip", "--python", str(home / "bin" / "python"), "install", "--quiet",
                     "--no-deps", "--no-index", str(wheel)], home.parent)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return home


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("user")
    for name, text in USER_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def environment(tmp_path) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "SPINESCOPE_HOME": str(tmp_path / "home")}


def test_the_wheel_adds_one_import_name_with_the_app_config_and_the_plotly_bundle(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"spinescope", wheel.name.split("-py")[0] + ".dist-info"}
    for expected in ("spinescope/spinenet/spec.py", "spinescope/analysis/cli.py", "spinescope/app/main.py",
                     "spinescope/app/.streamlit/config.toml", "spinescope/assets/specs/spinenet-49.yaml",
                     "spinescope/assets/published.json", "spinescope/app/graph_view.js"):
        assert expected in names
    if (ROOT / BUNDLE).is_file():
        assert f"spinescope/{BUNDLE.as_posix()}" in names
    assert not [name for name in names if "__pycache__" in name or name.startswith("spinescope/tests")]


def test_installed_it_works_beside_a_users_own_app_analysis_spinenet_and_assets(venv, workdir, tmp_path):
    python, command, env = str(venv / "bin" / "python"), str(venv / "bin" / "spinescope"), environment(tmp_path)
    code = ("import spinescope, torch; b = spinescope.create_backbone('spinenet-49s', 64); "
            "print(spinescope.__file__); print(list(b(torch.zeros(1, 3, 64, 64))))")
    imported = run([python, "-c", code], workdir, env)
    assert imported.returncode == 0, imported.stderr[-2000:]
    where, levels = imported.stdout.splitlines()
    assert where.startswith(str(venv)) and levels == "['P3', 'P4', 'P5', 'P6', 'P7']"
    listed = run([command, "list"], workdir, env)
    assert listed.returncode == 0 and listed.stdout.split()[0] == "spinenet-49s", listed.stderr
    assert run([command, "--version"], workdir, env).stdout.strip() == f"spinescope {spinescope_version()}"
    helped = run([command, "--help"], workdir, env).stdout
    assert helped.startswith("usage: spinescope ") and "app" in helped
    # Nothing else was installed: from an empty folder, the names a wheel used to add do not import.
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("app", "analysis", "spinenet", "assets"):
        assert run([python, "-c", f"import {name}"], empty, env).returncode == 1


def spinescope_version() -> str:
    import spinescope

    return spinescope.__version__


def test_a_missing_extra_is_one_line_naming_it(venv, workdir, tmp_path):
    """fvcore hidden (sys.modules[...] = None makes its import fail): `--counter fvcore` names the extra."""
    code = "import sys; sys.modules['fvcore'] = None; from spinescope.cli import main; sys.exit(main())"
    result = run([str(venv / "bin" / "python"), "-c", code, "analyze", "spinenet-49s@64", "--counter", "fvcore"],
                 workdir, environment(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == "error: fvcore is not installed: pip install 'spinescope[verify]'\n"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def installed_app(venv, workdir, tmp_path):
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    process = subprocess.Popen([str(venv / "bin" / "spinescope"), "app", "--port", str(port)], cwd=workdir,
                               env=environment(tmp_path), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
        except OSError:
            time.sleep(0.3)
    yield url
    os.killpg(process.pid, 15)
    process.wait(timeout=30)
    log.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    yield context.new_page()
    context.close()


def test_spinescope_app_from_the_wheel_is_the_same_app_and_asks_no_other_host(installed_app, page):
    from playwright.sync_api import expect

    requests = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(installed_app + "/")
        expect(page.locator(".st-key-graph .scatterlayer .trace:last-child path.point").first).to_be_visible(
            timeout=90_000)
        page.wait_for_timeout(2000)  # the favicon, fonts and any telemetry come after the page
        assert [url for url in requests if not url.startswith((installed_app, "data:", "blob:"))] == []
        if (ROOT / BUNDLE).is_file():
            assert any(url.endswith("plotly-basic.min.js") for url in requests)
        expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
        # The whole tab strip is clickable: nothing (Streamlit's header) lies over the middle of a tab.
        tab = page.get_by_role("tab", name="Edit")
        box = tab.bounding_box()
        on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('[role=tab]')?.textContent",
                               [box["x"] + box["width"] / 2, box["y"] + 3])
        assert on_top == "Edit"
        tab.click()
        expect(page.get_by_text("Block to edit")).to_be_visible()
        # The project's theme: its primary colour (#3b6fb6) marks the open tab.
        expect(page.get_by_role("tab", name="Edit")).to_have_css("color", "rgb(59, 111, 182)")
    finally:
        page.close()

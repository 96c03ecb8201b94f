"""The edit loop as a user feels it: the real app (`streamlit run app/main.py` on a free 127.0.0.1 port, with a
temporary SPINESCOPE_HOME) driven by Debian's Chromium through Playwright.

Timed, from the mouse click to the moment the page shows the result:
- edit: in the Edit tab, pick another level for a block (alternately L4 -> L5 and back) until the "Backbone MACs"
  figure shows the new value (computed here by analysis.counting on the edited spec) and the graph beside it has
  been redrawn with the block at its new level (read from the plotly figure in the page);
- undo: the sidebar's Undo button, until the previous MACs value and the previous graph are shown;
- first visit: a new browser context (empty cache) opens the app until the graph's nodes are drawn (the server
  is warm: one visit before the timed ones).
SpineNet-49 and SpineNet-190 (opened through the sidebar), at the app's input size (640). Prints median and
worst of each; nothing is asserted.

--baseline REV also serves the app as it was at git revision REV (exported with `git archive` into a temporary
folder, same Python environment) and measures both in alternating rounds, so that a loaded machine slows both
alike; it prints both and the ratio of the medians (this / baseline).

Usage: .venv/bin/python benchmarks/bench_edit_loop.py [--edits 12] [--visits 6] [--models spinenet-49 spinenet-190]
       [--baseline REV] [--rounds 2]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "browser")]

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from spinescope.analysis.counting import analyze  # noqa: E402
from spinescope.app.units import billions  # noqa: E402
import conftest  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402
from spinescope.spinenet.edits import set_level  # noqa: E402

VIEWPORT = {"width": 1366, "height": 768}
NODES = ".st-key-graph .scatterlayer .trace:last-child path.point"  # the node trace is drawn last
TIMEOUT_MS = 60_000
# True once the figure with key `key` holds node `id` at level `level` and plotly has drawn it.
GRAPH_SHOWS = """([key, id, level]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  if (!gd || !gd.data || !gd._fullLayout) return false;
  const trace = gd.data.find(t => t.name === 'blocks');
  if (!trace) return false;
  const index = trace.customdata.findIndex(c => (Array.isArray(c) ? c[0] : c) === id);
  return index >= 0 && trace.y[index] === level && gd.querySelectorAll('.scatterlayer path.point').length > 0;
}"""
METRIC_SHOWS = """([text]) => {
  const value = document.querySelector('[data-testid="stMetricValue"]');
  return value !== null && value.textContent.trim() === text;
}"""


def wait_idle(page: Page) -> None:
    page.wait_for_timeout(250)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')",
                           timeout=TIMEOUT_MS)


def choose(page: Page, key: str, option: str) -> None:
    page.locator(f".st-key-{key} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def wait_shown(page: Page, macs: str, block: str, level: int) -> None:
    page.wait_for_function(METRIC_SHOWS, arg=[macs], timeout=TIMEOUT_MS, polling="raf")
    page.wait_for_function(GRAPH_SHOWS, arg=["edit_graph", block, level], timeout=TIMEOUT_MS, polling="raf")


def level_label(size: int, level: int) -> str:
    return f"L{level} ({-(-size // 2 ** level)} px)"


def edit_loop(page: Page, name: str, edits: int, block: str = "b7") -> dict[str, list[float]]:
    """Opens built-in `name`, then times `edits` level edits of `block` and as many undos."""
    spec = load_builtin(name)
    if name != "spinenet-49":
        choose(page, "builtin_choice", spec.name)
        wait_idle(page)
        page.locator(".st-key-open_builtin button").first.click()
        page.wait_for_function(f"() => document.body.innerText.includes('Editing {spec.name}')",
                               timeout=TIMEOUT_MS)
    wait_idle(page)
    size = int(page.locator(".st-key-input_size input").input_value())
    choose(page, "edit_block_box", block)
    wait_idle(page)
    original = spec.block(block).level
    other = original + 1
    states = [(spec, original)]
    timings = {"edit": [], "undo": []}
    for index in range(edits):
        level = other if index % 2 == 0 else original
        edited = set_level(states[-1][0], block, level)
        macs = billions(analyze(edited, size).backbone_macs)
        page.locator(".st-key-edit_level input").click()
        option = page.get_by_role("option", name=level_label(size, level), exact=True)
        option.wait_for()
        start = time.perf_counter()
        option.click()
        wait_shown(page, macs, block, level)
        timings["edit"].append(time.perf_counter() - start)
        states.append((edited, level))
        wait_idle(page)
    for _ in range(edits):
        states.pop()
        previous, level = states[-1]
        macs = billions(analyze(previous, size).backbone_macs)
        button = page.get_by_role("button", name="Undo")
        start = time.perf_counter()
        button.click()
        wait_shown(page, macs, block, level)
        timings["undo"].append(time.perf_counter() - start)
        wait_idle(page)
    return timings


def first_visits(browser, url: str, visits: int, warm: bool = True) -> list[float]:
    """Returns the seconds from opening `url` in a new browser context (empty cache) until the graph's nodes are
    drawn, `visits` times (after one untimed visit when `warm`)."""
    times = []
    for index in range(visits + warm):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.locator(NODES).first.wait_for(state="visible", timeout=TIMEOUT_MS)
        if index or not warm:
            times.append(time.perf_counter() - start)
        context.close()
    return times


def edit_session(browser, url: str, name: str, edits: int) -> dict[str, list[float]]:
    """Opens the app in a new context, goes to Edit and times `edits` edits and undos of built-in `name`."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(url)
    page.locator(NODES).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Edit").click()
    try:
        return edit_loop(page, name, edits)
    finally:
        context.close()


def summary(label: str, values: list[float]) -> str:
    return (f"{label:34} median {statistics.median(values):6.2f} s   worst {max(values):6.2f} s   "
            f"best {min(values):6.2f} s   (n={len(values)})")


def start_server(root: Path, home: Path) -> AppServer:
    """Starts `streamlit run app/main.py` from the checkout at `root`."""
    original, conftest.ROOT = conftest.ROOT, root
    try:
        return AppServer(home).start()
    finally:
        conftest.ROOT = original


def export_revision(revision: str, folder: Path) -> Path:
    """Writes the files of git revision `revision` into `folder` (nothing in the repository changes)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def measure(browser, servers: dict[str, AppServer], args) -> dict[str, dict[str, list[float]]]:
    """Returns {server label: {measure label: seconds}}, the servers taking turns round by round."""
    results = {label: {} for label in servers}
    for server in servers.values():  # warm each server once, untimed
        first_visits(browser, server.url, 0)
    for round_index in range(args.rounds):
        order = list(servers.items()) if round_index % 2 == 0 else list(servers.items())[::-1]
        for label, server in order:
            visits = max(1, args.visits // args.rounds)
            results[label].setdefault("first visit -> graph drawn", []).extend(
                first_visits(browser, server.url, visits, warm=False))
            for name in args.models:
                spec_name = load_builtin(name).name
                timings = edit_session(browser, server.url, name, max(1, args.edits // args.rounds))
                for kind in ("edit", "undo"):
                    results[label].setdefault(f"{spec_name}: {kind} -> MACs + graph", []).extend(timings[kind])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=12)
    parser.add_argument("--visits", type=int, default=6)
    parser.add_argument("--models", nargs="*", default=["spinenet-49", "spinenet-190"])
    parser.add_argument("--baseline", help="git revision to measure beside this checkout")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (edits and visits are split)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spinescope-bench-") as tmp:
        servers = {"this checkout": start_server(ROOT, Path(tmp) / "home")}
        try:
            if args.baseline:
                old = export_revision(args.baseline, Path(tmp) / "baseline")
                servers[f"baseline {args.baseline}"] = start_server(old, Path(tmp) / "home-baseline")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                results = measure(browser, servers, args)
                browser.close()
        finally:
            for server in servers.values():
                server.stop()
    for label, measured in results.items():
        print(label)
        print("\n".join(summary(name, values) for name, values in measured.items()))
    if args.baseline:
        ours, theirs = results["this checkout"], results[f"baseline {args.baseline}"]
        print(f"median ratio (this checkout / baseline {args.baseline})")
        for name in ours:
            print(f"{name:34} {statistics.median(ours[name]) / statistics.median(theirs[name]):6.2f}")


if __name__ == "__main__":
    main()

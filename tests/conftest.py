import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright, one for the whole run (tests/browser and the installed wheel's app
    share it: a second sync Playwright in the same run would find the first one's event loop)."""
    from browser_settings import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def one_torch_thread():
    """fvcore runs the real forward pass; with one thread it does not stall on a machine other work shares."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster (2 CPUs, no dashboard, 127.0.0.1) for one test module. Per module, not per session: Ray's
    driver prints its workers' deaths (tests that kill workers on purpose) to stdout whenever they reach it, even
    with log_to_driver off, so a cluster left running could write into a later test's captured output."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray
    ray.shutdown()


# Tiers: every test gets the marker of the part of the suite it belongs to, by folder; `make test-fast` runs the
# unit tier (`-m unit`), `make test` everything.
FOLDER_TIERS = {"browser": "browser", "app": "app", "package": "package", "sweep": "slow", "latency": "slow",
                "memory": "slow", "hardening": "slow", "onnx": "slow"}
SLOW_FILES = {"test_fast_count.py", "test_verify_cli.py", "test_spp.py", "test_classification_paper.py",
              "test_narrow_head.py", "test_training_loop.py", "test_reference_init.py", "test_detection.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        tier = FOLDER_TIERS.get(parts[0]) if len(parts) > 1 else None
        if tier is None and parts[-1] in SLOW_FILES:
            tier = "slow"
        if not any(item.get_closest_marker(name) for name in ("browser", "app", "package", "slow")):
            item.add_marker(tier or "unit")

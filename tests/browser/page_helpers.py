"""What the real-browser tests share: opening the app, driving its widgets as a user does, and reading the page.
Expected figures come from the counting library on the same specs, never from the page itself."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Page, expect

from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore
from spinescope.spinenet.builtins import load_builtin

SPINENET_49 = load_builtin("spinenet-49")
NODES = ".st-key-graph .scatterlayer .trace:last-child path.point"  # the node trace is drawn last


def open_app(page: Page, server, workspace: str | None = None) -> None:
    page.goto(server.url + (f"/?ws={workspace}" if workspace else "/"))
    expect(page.locator(NODES).first).to_be_visible(timeout=60_000)


def workspace_of(page: Page) -> str:
    return parse_qs(urlparse(page.url).query)["ws"][0]


def stored_spec(server, page: Page):
    return WorkspaceStore(server.home / WORKSPACE_FILE).load(workspace_of(page)).current


def backbone_macs(page: Page):
    return page.locator(".st-key-totals_backbone [data-testid='stMetricValue']").nth(1)


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def choose(page: Page, key: str, option: str) -> None:
    """Picks `option` in the selectbox with widget key `key`, as a user does with the mouse."""
    page.locator(f".st-key-{key} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def click_node(page: Page, order: int) -> None:
    point = page.locator(NODES).nth(order)
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def edit_level(page: Page, block_id: str, level: int) -> None:
    """Changes a block's level in the Edit tab (input size 640) and returns to Explore."""
    open_tab(page, "Edit")
    select_for_edit(page, block_id)
    choose(page, "edit_level", level_label(level))
    expect(page.get_by_text(f"relevelled {block_id}")).to_be_visible()
    open_tab(page, "Explore")


def select_for_edit(page: Page, block_id: str) -> None:
    """Chooses the block in the Edit tab and waits for the server's answer: the level field shows its level."""
    choose(page, "edit_block_box", block_id)
    expect(page.locator(".st-key-edit_level input")).to_have_value(level_label(SPINENET_49.block(block_id).level))


def level_label(level: int) -> str:
    return f"L{level} ({-(-640 // 2 ** level)} px)"


def upload(page: Page, files) -> None:
    """Puts `files` into the uploader (once the script has finished its rerun and a single uploader is drawn)."""
    wait_until_idle(page)
    uploader = page.locator("[data-testid='stFileUploaderDropzoneInput']")
    expect(uploader).to_have_count(1)
    uploader.set_input_files(files)


def wait_until_idle(page: Page) -> None:
    """Waits until Streamlit shows no running script (a file set during a rerun can land on a replaced widget)."""
    page.wait_for_timeout(300)  # the running indicator appears shortly after a rerun starts
    expect(page.get_by_test_id("stStatusWidgetRunningIcon")).to_have_count(0)


def assert_no_traceback(page: Page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def field(page: Page, key: str):
    return page.locator(f".st-key-{key} input")


def type_into(page: Page, key: str, value: str) -> None:
    """Types `value` into the field with widget key `key` once the page has one such field (a rerun that moves the
    form shows the old copy until it ends), and waits for the server's rerun."""
    box = field(page, key)
    expect(box).to_have_count(1)
    box.fill(value)
    box.press("Enter")
    wait_until_idle(page)
    expect(box).to_have_count(1)
    expect(box).to_have_value(value)


# [table key, whether it scrolls sideways] for every table drawn on the page (a table's key is read from its CSV
# button, the element after it: app.tables.table keys that button f"{key}_csv").
# Waits (returns null) while a grid is still being drawn.
TABLE_WIDTHS = """() => { const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')]
    .filter(e => e.offsetParent);
  if (grids.some(e => !e.querySelector('.dvn-scroller'))) return null;
  return grids.map(e => { const scroller = e.querySelector('.dvn-scroller');
    const next = e.closest('.stElementContainer').nextElementSibling;
    const key = next && [...next.classList].find(c => c.endsWith('_csv'));
    return [key && key.slice(7, -4), scroller.scrollWidth > scroller.clientWidth + 1]; }); }"""


def overlapping(boxes) -> list:
    """Returns the pairs of labels (x0, y0, x1, y1, label) whose boxes overlap by more than a pixel."""
    return [(a[4], b[4]) for index, a in enumerate(boxes) for b in boxes[index + 1:]
            if a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1]

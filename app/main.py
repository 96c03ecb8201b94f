"""SpineScope: explore, edit and compare scale-permuted backbones. Run with `spinescope app` (or `make run`)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# `streamlit run` puts this file's folder first on sys.path; the app's modules are imported as `spinescope.app.*`
# instead, so that none of them can shadow a library module of the same name. The folder that holds the
# `spinescope` package comes first: the repository root in a checkout, site-packages when installed.
PACKAGE_PARENT = next(folder for folder in HERE.parents if (folder / "spinescope" / "__init__.py").is_file())
sys.path[:] = [str(PACKAGE_PARENT)] + [entry for entry in sys.path
                                       if Path(entry or ".").resolve() not in (PACKAGE_PARENT, HERE)]

import streamlit as st  # noqa: E402

from spinescope.app import (compare_tab, edit_tab, explore_tab, io_tab, latency_tab, memory_tab, search_tab,  # noqa: E402
                            session, sidebar, sweep_tab)
from spinescope.app.guard import guarded  # noqa: E402

TABS = {"Explore": ("explore", explore_tab.render), "Edit": ("edit", edit_tab.render),
        "Compare": ("compare", compare_tab.render), "Latency": ("latency", latency_tab.render),
        "Memory": ("memory", memory_tab.render), "Sweeps": ("sweeps", sweep_tab.render),
        "Search": ("search", search_tab.render), "Import / export": ("import/export", io_tab.render)}

# A local icon: a Material icon (":material/...") makes every page load fetch the favicon from Google's servers.
st.set_page_config(page_title="SpineScope", page_icon=str(HERE.parent / "assets" / "icon.png"), layout="wide",
                   initial_sidebar_state="expanded")

# The server must listen on the loopback interface only. app/.streamlit/config.toml (the project's config;
# `spinescope app` passes it to Streamlit wherever it is started) says so; a command-line flag or STREAMLIT_SERVER_ADDRESS can
# still override it, and then the app refuses to serve anything.
LOOPBACK = ("127.0.0.1", "localhost", "::1")
if st.get_option("server.address") not in LOOPBACK:
    st.error(f"SpineScope serves 127.0.0.1 only, but this server listens on "
             f"{st.get_option('server.address') or 'every interface'}. Stop it and start it with `make run` or "
             "`spinescope app`.")
    st.stop()

# Less empty space above the tabs; Explore's detail tabs keep one height, so switching them never moves the graph
# above (the page would scroll under the pointer); the rest is Streamlit's own look.
PAGE_STYLE = ("<style>.stMainBlockContainer {padding-top: 2.2rem;} .stSidebar h2 {padding-top: 0;} "
              ".st-key-explore_details [role=tabpanel] {min-height: 520px;} .st-key-undo_keys {display: none;}</style>")

# Ctrl+Z / Ctrl+Shift+Z (Cmd on a Mac; Ctrl+Y too) press the sidebar's Undo / Redo, except in a text field, where
# they remain the field's own undo (Streamlit's button shortcuts would fire there too).
UNDO_KEYS_SCRIPT = """<script>
(() => {
  const page = window.parent.document;
  if (page.spinescopeUndoKeys) return;
  page.spinescopeUndoKeys = true;
  const typing = target => target instanceof Element
    && (target.isContentEditable || target.closest("input, textarea, select, [contenteditable=true]") !== null);
  page.addEventListener("keydown", event => {
    const key = event.key.toLowerCase();
    if (!(event.ctrlKey || event.metaKey) || event.altKey || !(key === "z" || key === "y") || typing(event.target)) {
      return;
    }
    const button = page.querySelector(event.shiftKey || key === "y" ? ".st-key-redo button" : ".st-key-undo button");
    event.preventDefault();
    if (button && !button.disabled) button.click();
  });
})();
</script>"""


def undo_keys() -> None:
    """Binds Ctrl+Z / Ctrl+Shift+Z to Undo / Redo in this browser tab (a hidden script element, drawn every run)."""
    with st.container(key="undo_keys"):
        st.html(UNDO_KEYS_SCRIPT, unsafe_allow_javascript=True)


def main() -> None:
    session.start()
    st.html(PAGE_STYLE)
    sidebar.render()
    session.show_notes("global")
    tabs = st.tabs(list(TABS), key="tab", on_change="rerun", bind="query-params")
    # Only the open tab runs: the others would recompute figures nobody sees.
    for (label, (area, render)), tab in zip(TABS.items(), tabs):
        if tab.open:
            with tab:
                guarded(area, render)
    undo_keys()
    # Last: its element is drawn on a session's first run only, and one that came before the tabs would move them,
    # so the browser would mount the whole open tab again (the graph too) on the next run.
    session.remember_browser()

guarded("app", main)

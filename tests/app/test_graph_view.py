"""The plotly.js bundle the graph component loads (app/static/package-lock.json) is the version of plotly.js that
requirements.txt's plotly writes figures for, so the app's graph and its exports are read by the same plotly.js."""
import json
from pathlib import Path

from plotly.offline import get_plotlyjs_version

from spinescope.app.graph_view import BUNDLE, STATIC

ROOT = Path(__file__).resolve().parents[2]


def test_the_pinned_basic_bundle_is_the_plotly_js_that_plotly_py_ships():
    lock = json.loads((ROOT / "app" / "static" / "package-lock.json").read_text())
    package = BUNDLE.parent.as_posix()  # node_modules/plotly.js-basic-dist-min
    assert lock["packages"][package]["version"] == get_plotlyjs_version()
    manifest = json.loads((STATIC / "package.json").read_text())
    assert manifest["dependencies"][BUNDLE.parent.name] == get_plotlyjs_version()

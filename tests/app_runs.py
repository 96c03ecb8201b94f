"""What the AppTest-driven tests share: a private SPINESCOPE_HOME per test and a run that fails on any exception
the page shows."""
import json

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh SPINESCOPE_HOME (workspace and history files) per test; returns its path."""
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(app):
    """Runs the script once more and fails on any exception it shows; returns the AppTest."""
    app.run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def figures(app) -> list[dict]:
    """Returns every plotly figure on the page as plotly.js JSON: st.plotly_chart's and those of the architecture
    graph's component (app/graph_view.py), which draws the graph wherever plotly.js's basic bundle is installed."""
    charts = [json.loads(item.proto.spec) for item in app.get("plotly_chart")]
    graphs = [json.loads(json.loads(item.proto.json)["figure"]) for item in app.get("bidi_component")
              if item.proto.component_name == "spinescope_graph"]
    return charts + graphs

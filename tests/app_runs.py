"""What the AppTest-driven tests share (tests/app/conftest.py gives each a private SPINESCOPE_HOME): a run that fails on any exception
the page shows."""
import json



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

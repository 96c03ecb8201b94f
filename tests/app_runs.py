"""What the AppTest-driven tests share: a private SPINESCOPE_HOME per test and a run that fails on any exception
the page shows."""
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

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh SPINESCOPE_HOME (workspace and history files) for each AppTest-driven test; returns its path."""
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"

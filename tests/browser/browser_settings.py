"""Settings shared by the real-browser tests (a module of its own: test files cannot import conftest)."""
VIEWPORT = {"width": 1500, "height": 1000}
TIMEOUT_MS = 30_000

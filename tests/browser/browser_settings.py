"""Settings shared by the real-browser tests (a module of its own: test files cannot import conftest)."""
VIEWPORT = {"width": 1500, "height": 1000}
TIMEOUT_MS = 30_000
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright never downloads a browser here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

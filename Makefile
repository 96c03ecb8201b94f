# The two commands a new user needs: `make run` (the app on http://127.0.0.1:8501) and `make test` (what CI runs).
# `make test-fast` is the unit tier for a developer's loop (no app, browser, wheel, subprocess or training tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
BUNDLE := app/static/node_modules/.package-lock.json

.PHONY: setup browser run test test-fast lint screenshot clean

setup: $(VENV)/.installed $(BUNDLE)

# plotly.js's basic bundle for the app's graph (app/graph_view.py), pinned by app/static/package-lock.json. Without npm
# the app still runs: the graph is then drawn by Streamlit's own plotly chart, whose first visit is slower.
$(BUNDLE): app/static/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix app/static --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the graph falls back to st.plotly_chart (install Node.js and run make setup again)"; fi

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

# Debian's Chromium for the real-browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

run: setup
	$(PY) -m spinescope app --port $(PORT)

test: setup browser lint
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m unit

lint: setup
	$(PY) -m ruff check .

# Refreshes docs/screenshot.png (the README's picture) from the real-browser test; tests never write it otherwise.
screenshot: setup browser
	SPINESCOPE_UPDATE_SCREENSHOT=1 $(PY) -m pytest tests/browser/test_browser_app.py -k page_loads

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis app/static/node_modules

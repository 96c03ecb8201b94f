"""Wheel build hook: puts the app's plotly.js bundle (npm-installed from app/static/package-lock.json, not in git)
into the wheel, running `npm ci` first when it is missing and npm exists. Without it the app draws its graph with
Streamlit's own plotly chart."""
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLE = Path("app/static/node_modules/plotly.js-basic-dist-min/plotly-basic.min.js")


class PlotlyBundleHook(BuildHookInterface):
    def initialize(self, version, build_data):
        root = Path(self.root)
        if not (root / BUNDLE).is_file() and shutil.which("npm"):
            subprocess.run(["npm", "ci", "--prefix", str(root / "app/static"), "--no-audit", "--no-fund",
                            "--loglevel=error"], check=False)
        if (root / BUNDLE).is_file():
            build_data["force_include"][str(root / BUNDLE)] = f"spinescope/{BUNDLE}"

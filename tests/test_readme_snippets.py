"""The README's code that says it runs as written does: each block marked `<!-- snippet: NAME -->` is run as a script
in a temporary folder, from a copy of the text (the README is never changed)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = re.compile(r"<!-- snippet: (\w+) -->\n```python\n(.*?)```", re.S)


def snippets() -> dict[str, str]:
    return dict(SNIPPET.findall((ROOT / "README.md").read_text()))


def test_the_readme_marks_the_training_recipe():
    assert "train" in snippets()


@pytest.mark.slow
def test_the_training_recipe_runs_as_written_and_prints_three_losses(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(snippets()["train"])
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=500, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    steps = [line.split() for line in result.stdout.splitlines()]
    assert [int(step) for step, _ in steps] == [0, 1, 2]
    assert all(0 < float(loss) < 100 for _, loss in steps)

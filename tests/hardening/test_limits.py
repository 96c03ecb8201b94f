"""Requests that would exceed the machine are refused before anything real is built; limits come from the
environment."""
import subprocess
import sys
from pathlib import Path

import pytest

from spinescope.analysis.counting import analyze
from spinescope.analysis.limits import ResourceLimitError, max_memory_bytes, max_seconds
from spinescope.spinenet.builtins import load_builtin

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_configuration(monkeypatch):
    monkeypatch.delenv("SPINESCOPE_MAX_SECONDS", raising=False)
    monkeypatch.delenv("SPINESCOPE_MAX_MEMORY_MIB", raising=False)
    assert (max_seconds(), max_memory_bytes()) == (600.0, None)
    monkeypatch.setenv("SPINESCOPE_MAX_SECONDS", "5")
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "1.5")
    assert (max_seconds(), max_memory_bytes()) == (5.0, 3 * 2**19)
    monkeypatch.setenv("SPINESCOPE_MAX_SECONDS", "-1")
    with pytest.raises(ResourceLimitError, match="must be a positive finite number"):
        max_seconds()


def test_fvcore_trace_refused_for_time(monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_SECONDS", "50")
    # SpineNet-190 with its head at 1280 px: 1,882B MACs, about 94 s at the assumed 20 GMAC/s.
    with pytest.raises(ResourceLimitError, match=r"would take about 94 s, over the 50 s limit"):
        analyze(load_builtin("spinenet-190"), 1280, "retinanet", counter="fvcore")


def test_fvcore_trace_refused_for_memory(monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "20")
    with pytest.raises(ResourceLimitError, match="needs about [\\d,]+ MiB, more than the 20 MiB available"):
        analyze(load_builtin("spinenet-49"), 512, counter="fvcore")


def test_fast_counter_needs_no_limit(monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "1")
    monkeypatch.setenv("SPINESCOPE_MAX_SECONDS", "0.001")
    assert analyze(load_builtin("spinenet-190"), 2048, "retinanet").macs > 4e12


def test_cli_refusal_is_one_line():
    env = {"SPINESCOPE_MAX_SECONDS": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "spinescope", "analyze", "spinenet-96", "--verify"], cwd=ROOT,
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: refused: an fvcore trace of SpineNet-96")
    assert len(result.stderr.strip().splitlines()) == 1


def test_broken_pipe_is_quiet():
    result = subprocess.run(f"{sys.executable} -m spinescope analyze spinenet-49 | head -1", shell=True, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("SpineNet-49 at 640x640") and "Traceback" not in result.stderr


def test_cpu_latency_run_refused_for_time():
    from spinescope.analysis.latency import LatencyError, LatencyRequest, run_latency

    # SpineNet-190 backbone at 1280 px, 12 passes (2 warm-up, 9 timed, 1 memory probe) of about 620B MACs each.
    with pytest.raises(LatencyError, match=r"refused: the run would take about [\d,]+ s on this CPU, over its 30 s"):
        run_latency([LatencyRequest(load_builtin("spinenet-190"))], device="cpu", iters=9, warmup=2, timeout=30,
                    history=False)

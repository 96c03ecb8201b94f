"""`spinescope space` and `spinescope search`: the new user's path (sample, see the population, search, list, show,
open the best spec), and one-line errors naming the value for bad input."""
import json

import pytest

from spinescope.analysis.cli import main
from spinescope.spinenet.formats import load_spec_file
from spinescope.spinenet.validate import find_problems
from spinescope.spinenet.spec import spec_to_dict


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))


def test_space_samples_summarizes_and_writes_spec_files(tmp_path, capsys):
    assert main(["space", "--samples", "12", "--seed", "3", "--out", str(tmp_path / "specs")]) == 0
    out = capsys.readouterr().out
    assert "12 valid sample(s)" in out and "SpineNet-49" in out and "ResNet-50-FPN" in out
    assert "MACs (G)" in out and "P3 RF (px)" in out and "train mem (GiB)" in out
    files = sorted((tmp_path / "specs").glob("*.json"))
    assert len(files) == 12
    for path in files:
        assert find_problems(spec_to_dict(load_spec_file(path))) == []
    assert main(["space", "--samples", "30", "--counts-only"]) == 0
    out = capsys.readouterr().out
    assert "MACs (G)" in out and "RF" not in out and "train mem" not in out
    assert main(["space", "--samples", "5", "--json", "--moves", "permute"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["samples"] == 5 and data["space"]["moves"] == ["permute"]
    assert 0 <= data["summary"]["macs"]["references"]["SpineNet-49"]["percentile"] <= 100


def test_search_lists_shows_and_exports_the_best(tmp_path, capsys):
    db = str(tmp_path / "s.sqlite")
    assert main(["search", "--db", db, "--run", "demo", "--budget", "8", "--population", "4", "--round", "2"]) == 0
    out = capsys.readouterr().out
    assert "run demo: done" in out and "best spec file:" in out
    best_file = tmp_path / "search-specs" / "demo-best.json"
    assert find_problems(spec_to_dict(load_spec_file(best_file))) == []
    assert main(["search", "--db", db, "--list"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["search", "--db", db, "--show", "demo", "--top", "3", "--export-best", str(tmp_path / "b.json")]) == 0
    assert load_spec_file(tmp_path / "b.json") == load_spec_file(best_file)
    assert main(["analyze", str(best_file)]) == 0  # the best candidate opens like any spec
    # resuming a finished run with a larger budget continues it
    assert main(["search", "--db", db, "--run", "demo", "--budget", "10"]) == 0
    assert "resuming run demo: 8 of 10" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["space", "--gmacs", "9:1"], "--gmacs '9:1': LOW is above HIGH"),
    (["space", "--gmacs", "abc"], "--gmacs 'abc' must be LOW:HIGH"),
    (["space", "--mparams", "1:1e"], "'1e' is not a number"),
    (["space", "--moves", "permute,\x1b[31m"], "unknown move '\\x1b[31m'"),
    (["space", "--samples", "0"], "samples 0 is out of range"),
    (["space", "--memory-gib", "-1"], "--memory-gib '-1' must be a finite number > 0"),
    (["space", "--seed-spec", "resnet50-fpn"], "is a resnet_fpn spec"),
    (["space", "--seed-spec", "nosuch"], "unknown built-in 'nosuch'"),
    (["search", "--run", "bad id"], "run id 'bad id' must be"),
    (["search", "--show", "nope"], "no run 'nope'"),
    (["search", "--objective", "proxy-ap"], "needs --dataset DIR"),
    (["search", "--tournament", "9", "--population", "4"], "--tournament 9 is larger than the population 4"),
    (["search", "--ray", "host:99999"], "port 99999 is out of range"),
    (["search", "--algorithm", "genetic"], "invalid choice: 'genetic'"),
])
def test_bad_input_is_one_line_naming_the_value(argv, message, tmp_path, capsys):
    assert main(argv + (["--db", str(tmp_path / "s.sqlite")] if argv[0] == "search" else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "\x1b" not in err


def test_resuming_with_other_settings_is_refused(tmp_path, capsys):
    db = str(tmp_path / "s.sqlite")
    assert main(["search", "--db", db, "--run", "r", "--budget", "2"]) == 0
    capsys.readouterr()
    assert main(["search", "--db", db, "--run", "r", "--seed", "3", "--gmacs", "1:2"]) == 2
    assert "drop --gmacs, --seed" in capsys.readouterr().err
    assert main(["search", "--db", db, "--run", "r", "--budget", "1"]) == 2
    assert "a budget can only grow" in capsys.readouterr().err
    (tmp_path / "dir.sqlite").mkdir()
    assert main(["search", "--db", str(tmp_path / "dir.sqlite"), "--list"]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_cancel_flags_a_stored_run(tmp_path, capsys):
    from spinescope.analysis.search.store import Store

    db = str(tmp_path / "s.sqlite")
    assert main(["search", "--db", db, "--run", "c", "--budget", "1"]) == 0
    assert not Store(db).cancel_requested("c")
    assert main(["search", "--db", db, "--cancel", "c"]) == 0
    assert "asked run c to stop" in capsys.readouterr().out
    assert Store(db).cancel_requested("c")
    assert main(["search", "--db", db, "--cancel", "nope"]) == 2

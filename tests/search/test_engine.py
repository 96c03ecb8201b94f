"""Random search and regularized evolution on a real SQLite file: reproducible from the seed, evolution's
tournament and ageing, cancel and resume (same results as an uninterrupted run), the SearchJob a UI drives."""
import time

import pytest

from spinescope.analysis.search.engine import (SearchConfig, SearchError, best_candidate, create_run, population_at,
                                               request_cancel, run_search, start_search, visible_until)
from spinescope.analysis.search.space import Constraints, make_space, sample_rng
from spinescope.analysis.search.store import Store, StoreError
from spinescope.spinenet.spec import spec_from_dict
from spinescope.spinenet.validate import find_problems

from search.search_helpers import results

SPACE = make_space(constraints=Constraints(macs_min=80e9, macs_max=95e9))


def config(**changes) -> SearchConfig:
    settings = dict(space=SPACE, algorithm="evolution", objective="cost", budget=20, seed=1, population=6,
                    tournament=3, round_size=3)
    return SearchConfig(**{**settings, **changes})


def run(store: Store, cfg: SearchConfig, run_id: str, **options) -> list[dict]:
    create_run(store, cfg, run_id)
    assert run_search(store, run_id, **options)["status"] == "done"
    return store.candidates(run_id)


@pytest.mark.slow
def test_a_run_is_stored_in_sqlite_and_reproducible_from_its_seed(tmp_path):
    store = Store(tmp_path / "search.sqlite")
    first, again = run(store, config(budget=12), "a"), run(store, config(budget=12), "b")
    assert results(first) == results(again)
    assert results(run(store, config(budget=12, seed=2), "c")) != results(first)
    # A second connection to the file sees every candidate, valid and within the constraints.
    rows = Store(tmp_path / "search.sqlite").candidates("a")
    assert [row["idx"] for row in rows] == list(range(12))
    for row in rows:
        spec = spec_from_dict(row["spec"])
        assert find_problems(row["spec"]) == [] and 80e9 <= row["macs"] <= 95e9
        assert row["objective"] == row["metrics"]["rf_P3"] and row["metrics"]["memory_bytes"] > 0
        assert spec.name == row["name"]


def test_random_search_evaluates_samples_of_the_space(tmp_path):
    from spinescope.analysis.search.space import sample

    cfg = config(algorithm="random", budget=5)
    proposals = [sample(SPACE, sample_rng(cfg.seed, i))[0] for i in range(5)]
    rows = run(Store(tmp_path / "s.sqlite"), cfg, "r")
    assert [spec_from_dict(row["spec"]) for row in rows] == proposals
    assert {row["origin"] for row in rows} == {"sample"}


def test_evolution_keeps_a_population_window_and_mutates_the_tournament_winner(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    cfg = config(budget=24)
    rows = run(store, cfg, "e")
    finished = {row["idx"]: row for row in rows}
    assert [row["origin"] for row in rows[:6]] == ["sample"] * 6
    for row in rows[6:]:
        assert row["origin"] == "mutation" and row["move"].split(":")[0] in SPACE.moves
        # the population: the last P candidates finished before the candidate's round began (oldest aged out)
        limit = visible_until(cfg, row["idx"])
        assert limit == 6 + (row["idx"] - 6) // 3 * 3
        window = [finished[i] for i in range(max(0, limit - 6), limit)]
        assert population_at(cfg, row["idx"], finished) == window
        # the tournament: S members drawn with the candidate's own generator; the best one is the parent
        contenders = sample_rng(cfg.seed, row["idx"], "evolve").sample(window, 3)
        best = max(contenders, key=lambda r: (r["objective"], r["idx"]))
        assert row["parent_idx"] == best["idx"]
    best = best_candidate(rows)
    assert best["objective"] == max(row["objective"] for row in rows)
    # evolution does better than its initial samples on this objective
    assert best["objective"] >= max(row["objective"] for row in rows[:6])


@pytest.mark.slow
def test_cancel_then_resume_gives_the_uninterrupted_result(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    reference = run(store, config(), "ref")
    create_run(store, config(), "cut")
    seen = []

    def cancel_after_seven(row):
        seen.append(row)
        if len(seen) == 7:
            request_cancel(Store(tmp_path / "s.sqlite"), "cut")  # through the file, as another process would

    outcome = run_search(store, "cut", on_candidate=cancel_after_seven)
    assert outcome["status"] == "cancelled" and len(store.candidates("cut")) == 7
    resumed = []
    assert run_search(store, "cut", on_candidate=resumed.append)["status"] == "done"
    assert [row["idx"] for row in resumed] == list(range(7, 20))  # only what was missing is evaluated
    assert results(store.candidates("cut")) == results(reference)


def test_a_search_job_is_followed_and_cancelled_by_id(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    create_run(store, config(budget=5000), "job")
    job = start_search(store, "job")
    deadline = time.time() + 60
    while job.progress()[0] < 3 and time.time() < deadline:
        time.sleep(0.05)
    job.cancel()
    outcome = job.result(timeout=60)
    assert job.done() and outcome["status"] == "cancelled"
    done, budget = job.progress()
    assert 3 <= done < budget == 5000
    assert store.runs()[0]["id"] == "job" and store.runs()[0]["status"] == "cancelled"
    assert store.progress("job") == (done, 0)
    assert [row["idx"] for row in store.candidates("job", since=2)] == list(range(2, done))


def test_bad_settings_and_ids_are_one_line(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    with pytest.raises(SearchError, match="tournament 9 is out of range"):
        create_run(store, config(tournament=9))
    with pytest.raises(SearchError, match="needs --dataset"):
        create_run(store, config(objective="proxy-ap"))
    with pytest.raises(StoreError, match="run id"):
        create_run(store, config(), "bad id\n")
    create_run(store, config(), "x")
    with pytest.raises(StoreError, match="already exists"):
        create_run(store, config(), "x")
    with pytest.raises(StoreError, match="no run 'y'"):
        run_search(store, "y")
    (tmp_path / "not-sqlite").write_text("hello, this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot be used"):
        Store(tmp_path / "not-sqlite")

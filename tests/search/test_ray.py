"""A search on a real local Ray cluster (2 CPUs): the same results as in this process, and a candidate whose Ray
worker dies mid-task is retried and evaluated."""
import os

import pytest

from spinescope.analysis.search.engine import SearchConfig, create_run, evaluate_task, run_search
from spinescope.analysis.search.space import make_space
from spinescope.analysis.search.store import Store

from search.search_helpers import results

pytestmark = pytest.mark.slow


def dying_evaluate(folder, index: int):
    """A task function (a closure, pickled by value) whose worker process dies on candidate `index`'s first
    attempt."""
    def evaluate(task):
        if task["index"] == index:
            marker = os.path.join(folder, f"{index}.attempts")
            with open(marker, "a") as file:
                file.write("attempt\n")
            if len(open(marker).read().splitlines()) == 1:
                os._exit(1)
        return evaluate_task(task)
    return evaluate


def test_search_on_a_local_ray_cluster(ray_cluster, tmp_path):
    config = SearchConfig(make_space(), "evolution", "cost", budget=8, seed=2, population=4, tournament=2,
                          round_size=2)
    store = Store(tmp_path / "s.sqlite")
    create_run(store, config, "inline")
    run_search(store, "inline")
    create_run(store, config, "ray")
    outcome = run_search(store, "ray", ray="local", evaluate=dying_evaluate(str(tmp_path), 3))
    assert outcome["status"] == "done"
    assert results(store.candidates("ray")) == results(store.candidates("inline"))
    assert len(open(tmp_path / "3.attempts").read().splitlines()) == 2

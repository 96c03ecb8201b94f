"""Architecture search over the paper's design space: the space as data, sampling, mutation, a population view,
and random search / regularized evolution stored in SQLite (resumable, cancellable; local pool or Ray).

    seed.py        the seeds: ResNet-50's blocks as a scale-permuted block list, or any SpineNet spec
    space.py       the space (moves, constraints) as plain data; cheap metrics; reproducible sampling
    moves.py       one mutation per kind of move (permutation, parent, level, type)
    population.py  distributions of a population and where SpineNet-49 and ResNet-50-FPN sit in them
    store.py       the SQLite file of runs and candidates
    engine.py      the algorithms (random, regularized evolution) and the runner (in-process, process pool, Ray)
    cli.py         `spinescope space ...` and `spinescope search ...`
"""
from spinescope.analysis.search.engine import (SearchConfig, SearchError, create_run, request_cancel, run_search,
                                               start_search)
from spinescope.analysis.search.population import summarize
from spinescope.analysis.search.space import Space, SpaceError, candidate_metrics, sample, sample_many
from spinescope.analysis.search.store import Store, default_db_path

__all__ = ["SearchConfig", "SearchError", "create_run", "request_cancel", "run_search", "start_search", "summarize",
           "Space", "SpaceError", "candidate_metrics", "sample", "sample_many", "Store", "default_db_path"]

"""Architecture search over the paper's design space: the space as data, sampling, mutation, a population view,
and random search / regularized evolution stored in SQLite (resumable, cancellable; local pool or Ray).

    seed.py        the seeds: ResNet-50's blocks as a scale-permuted block list, or any SpineNet spec
    space.py       the space (moves, constraints) as plain data; cheap metrics; reproducible sampling
    moves.py       one mutation per kind of move (permutation, parent, level, type)
    population.py  distributions of a population and where SpineNet-49 and ResNet-50-FPN sit in them
    store.py       the SQLite file of runs and candidates
    engine.py      the algorithms (random, regularized evolution) and the runner (in-process, process pool, Ray)
    cli.py         `spinescope space ...` and `spinescope search ...`

For a UI (start / follow / cancel a run by id, read its population as rows):

    store = Store()                                    # or Store(path); the default file is in the data directory
    space = make_space(constraints=Constraints(macs_min=80e9, macs_max=95e9))
    run_id = create_run(store, SearchConfig(space, algorithm="evolution", budget=64, seed=0))
    job = start_search(store, run_id)                  # a thread; job.progress(), job.cancel(), job.result()
    rows = store.candidates(run_id)                    # one dict per evaluated candidate: idx, name, spec (dict),
                                                       # macs, params, objective, metrics, origin, parent_idx, move
    front = pareto_rows(rows)                          # MACs vs objective
    request_cancel(store, run_id)                      # from any process; `run_search(store, run_id)` resumes it
"""
from spinescope.analysis.search.engine import (SearchConfig, SearchError, SearchJob, TrainSettings, best_candidate,
                                               create_run, request_cancel, run_search, start_search)
from spinescope.analysis.search.population import edf, pareto_rows, reference_metrics, summarize
from spinescope.analysis.search.space import (Constraints, Space, SpaceError, candidate_metrics, make_space, sample,
                                              sample_many)
from spinescope.analysis.search.store import Store, default_db_path

__all__ = ["Constraints", "SearchConfig", "SearchError", "SearchJob", "Space", "SpaceError", "Store", "TrainSettings",
           "best_candidate", "candidate_metrics", "create_run", "default_db_path", "edf", "make_space", "pareto_rows",
           "reference_metrics", "request_cancel", "run_search", "sample", "sample_many", "start_search", "summarize"]

"""Random search and regularized evolution over a space, stored as results arrive, resumable, cancellable.

Algorithms (candidate i of a run seeded `seed`; each draw uses its own generator `sample_rng(seed, i, ...)`):
- random: candidate i is sample i of the space;
- evolution (Real et al. 2019, "Regularized evolution"): the first P candidates are samples; after that, candidate
  i looks at the population, the P most recently indexed candidates that finished (failed ones excluded), draws S
  of them at random (the tournament), takes the best (highest objective, the younger on a tie), and applies one
  mutation (`analysis.search.moves`). Adding a child ages out the oldest member (the population is a window).

Reproducible whatever the workers: candidates are proposed in rounds of `round_size`; a candidate of a round sees
exactly the results of the candidates of earlier rounds (the runner waits for them), never the order in which they
came back. So a run killed and resumed with the same id, or run on 1 worker or on Ray, proposes the same candidates
and (with a deterministic objective) ends with the same results.

Objectives (higher is better, stored as `objective`):
- cost: the receptive field of the finest output level (P3), pixels: how much image context the level that finds
  small objects sees, for compute bounded by the constraints (a MACs range is the designer's budget). Ties go to
  the younger candidate. Torch-free, milliseconds; for exploring what the constraints allow.
- proxy-ap: COCO-style AP@[.5:.95] of a short training (`analysis.training.train.train_proxy`) of the candidate at a
  tiny width and size on a synthetic COCO-format set: a proxy, as in the paper, never COCO AP.

Runners: in this process (workers 0), a local process pool (default), or a Ray cluster (`ray=ADDRESS`, connected
as the sweep engine does, `analysis.sweep.ray_runner`). A candidate whose worker process (or node) is lost is
submitted again, up to MAX_ATTEMPTS times, then stored as failed with the reason: never dropped.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace

from spinescope.analysis.search.moves import mutate
from spinescope.analysis.search.space import Space, SpaceError, sample, sample_rng, space_from_dict
from spinescope.analysis.search.store import Store, check_run_id, new_run_id
from spinescope.spinenet.spec import spec_from_dict, spec_hash, spec_to_dict

ALGORITHMS = ("random", "evolution")
OBJECTIVES = ("cost", "proxy-ap")
MAX_ATTEMPTS = 3
MAX_BUDGET = 100_000


class SearchError(ValueError):
    """A search that cannot start or go on (bad settings, missing training module, no admissible candidate);
    str() is one line."""


@dataclass(frozen=True)
class TrainSettings:
    """How proxy-ap trains a candidate: `steps` of `batch_size` images of image_size x image_size pixels from the
    COCO-format set in `dataset`, the candidate narrowed to `filter_size_scale` and `endpoints` channels (head
    width too, `head_convs` convs per subnet), on `device` ('auto', 'cpu', 'cuda'), `threads` torch threads."""

    dataset: str | None = None
    steps: int = 30
    batch_size: int = 2
    image_size: int = 128
    filter_size_scale: float = 0.25
    endpoints: int = 32
    head_convs: int = 2
    device: str = "auto"
    threads: int = 1


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides a run's candidates: the space, the algorithm, the objective, the budget
    (candidates evaluated), the seed, evolution's population P, tournament S and round size, and the training
    settings of proxy-ap."""

    space: Space
    algorithm: str = "evolution"
    objective: str = "cost"
    budget: int = 32
    seed: int = 0
    population: int = 8
    tournament: int = 3
    round_size: int = 4
    train: TrainSettings = field(default_factory=TrainSettings)

    def to_dict(self) -> dict:
        """Returns the config as JSON-ready data (as stored with the run)."""
        data = {key: getattr(self, key) for key in ("algorithm", "objective", "budget", "seed", "population",
                                                    "tournament", "round_size")}
        return {**data, "space": self.space.to_dict(), "train": asdict(self.train)}

    @staticmethod
    def from_dict(data: dict) -> "SearchConfig":
        """Returns the SearchConfig stored by `to_dict`."""
        rest = {k: v for k, v in data.items() if k not in ("space", "train")}
        return SearchConfig(space_from_dict(data["space"]), train=TrainSettings(**data["train"]), **rest)


def check_config(config: SearchConfig) -> SearchConfig:
    """Returns `config` when its settings are usable; raises SearchError (one line naming the value) otherwise."""
    if config.algorithm not in ALGORITHMS:
        raise SearchError(f"unknown algorithm {ascii(config.algorithm)}; use {' or '.join(ALGORITHMS)}")
    if config.objective not in OBJECTIVES:
        raise SearchError(f"unknown objective {ascii(config.objective)}; use {' or '.join(OBJECTIVES)}")
    for name, value, low, high in (("budget", config.budget, 1, MAX_BUDGET), ("population", config.population, 2,
                                   MAX_BUDGET), ("tournament", config.tournament, 1, config.population),
                                   ("round size", config.round_size, 1, 1024)):
        if not isinstance(value, int) or not low <= value <= high:
            raise SearchError(f"{name} {value!r} is out of range [{low}, {high}]")
    if config.algorithm == "evolution" and not config.space.moves:
        raise SearchError("evolution needs at least one move on (--moves)")
    if config.objective == "proxy-ap":
        dataset = config.train.dataset
        if not dataset or not os.path.isdir(dataset):
            raise SearchError(f"--objective proxy-ap needs --dataset DIR, a COCO-format directory (see `spinescope "
                              f"make-dataset`); got {ascii(str(dataset))}")
        training_module()
    return config


def training_module():
    """Returns `spinescope.analysis.training.train`; raises SearchError (one line) when it is not installed."""
    try:
        from spinescope.analysis.training import train
    except ImportError as error:
        raise SearchError(f"proxy-ap needs the training module (spinescope.analysis.training.train): {error}") from None
    return train


# ---------------------------------------------------------------------------------------------------- proposals
@dataclass
class Proposal:
    """A candidate ready to evaluate: its index, spec, cheap metrics, where it came from (origin 'sample' or
    'mutation'; the parent's index and the move)."""

    index: int
    spec: object
    metrics: dict
    origin: str
    parent_idx: int | None = None
    move: str | None = None


def visible_until(config: SearchConfig, index: int) -> int:
    """Returns n such that candidate `index` is proposed from the results of candidates 0..n-1 (all of which must
    have finished first): 0 for random search and evolution's initial population, else the start of its round."""
    if config.algorithm == "random" or index < config.population:
        return 0
    return config.population + (index - config.population) // config.round_size * config.round_size


def population_at(config: SearchConfig, index: int, finished: dict[int, dict]) -> list[dict]:
    """Returns evolution's population for candidate `index`: the last P finished (not failed) candidates among
    0..visible_until(index)-1, oldest first."""
    done = [finished[i] for i in range(visible_until(config, index)) if finished[i]["status"] == "done"]
    return done[-config.population:]


def propose(config: SearchConfig, index: int, finished: dict[int, dict]) -> Proposal:
    """Returns candidate `index` of the run (see the module docstring); raises SpaceError when the space yields no
    admissible candidate."""
    space = config.space
    if config.algorithm == "random" or index < config.population:
        spec, metrics, _ = sample(space, sample_rng(config.seed, index))
        return Proposal(index, spec, metrics, "sample")
    rng = sample_rng(config.seed, index, "evolve")
    population = population_at(config, index, finished)
    if not population:  # every earlier candidate failed: start again from a sample
        spec, metrics, _ = sample(space, rng)
        return Proposal(index, spec, metrics, "sample")
    contenders = rng.sample(population, min(config.tournament, len(population)))
    parent = max(contenders, key=lambda row: (row["objective"], row["idx"]))
    child, metrics, move = mutate(spec_from_dict(parent["spec"]), space, rng)
    return Proposal(index, child, metrics, "mutation", parent["idx"], move)


# ---------------------------------------------------------------------------------------------------- evaluation
def proxy_spec(spec, train: TrainSettings):
    """Returns the candidate narrowed for proxy training: filter_size_scale, endpoint and head width, head convs
    and input size from `train` (the topology unchanged)."""
    scaling = replace(spec.scaling, filter_size_scale=train.filter_size_scale, endpoints_num_filters=train.endpoints)
    head = replace(spec.head, width=train.endpoints, num_convs=train.head_convs)
    return replace(spec, scaling=scaling, head=head, input_size=train.image_size)


def evaluate_task(task: dict) -> dict:
    """Runs in a worker: evaluates one candidate. Returns {"objective": float (higher is better), "metrics":
    {...}, "seconds": wall seconds}. cost: the full metrics (macs, params, rf_P3..rf_P7, memory_bytes at the
    constraints' batch) and the finest output level's receptive field (pixels); proxy-ap: the proxy AP (0..1) of a
    short training, with ap50, train_seconds and train_steps."""
    start = time.perf_counter()
    spec = spec_from_dict(task["spec"])
    if task["objective"] == "cost":
        from spinescope.analysis.search.space import candidate_metrics

        space = space_from_dict(task["space"])
        metrics = candidate_metrics(spec, space, memory=True)
        objective = float(metrics[f"rf_P{spec.min_level}"])
    else:
        train = TrainSettings(**task["train"])
        if train.device != "cuda":
            import torch

            torch.set_num_threads(train.threads)
        result = training_module().train_proxy(
            proxy_spec(spec, train), train.dataset, steps=train.steps, batch_size=train.batch_size,
            image_size=(train.image_size, train.image_size), seed=task["train_seed"], device=train.device)
        objective = float(result.proxy_ap)
        metrics = {"proxy_ap": objective, "ap50": float(result.ap50), "train_seconds": float(result.seconds),
                   "train_steps": int(result.steps)}
    return {"objective": objective, "metrics": metrics, "seconds": time.perf_counter() - start}


def task_for(config: SearchConfig, proposal: Proposal) -> dict:
    """Returns the picklable task of a proposal (what `evaluate_task` reads)."""
    return {"index": proposal.index, "spec": spec_to_dict(proposal.spec), "objective": config.objective,
            "space": config.space.to_dict(), "train": asdict(config.train),
            "train_seed": config.seed * 100_003 + proposal.index}


# ---------------------------------------------------------------------------------------------------- backends
class InlineBackend:
    """Evaluates each task in this process when it is submitted (workers 0)."""

    capacity = 1

    def __init__(self, evaluate):
        self.evaluate, self.ready = evaluate, []

    def submit(self, index: int, task: dict) -> None:
        try:
            self.ready.append((index, "ok", self.evaluate(task)))
        except Exception as error:  # noqa: BLE001 - the candidate is stored as failed with the reason
            self.ready.append((index, "error", _one_line(error)))

    def wait(self, timeout: float):
        ready, self.ready = self.ready, []
        return ready

    def cancel_all(self) -> None:
        self.ready = []

    def close(self) -> None:
        pass


class ProcessBackend:
    """A local pool of `workers` spawned processes. A worker that dies breaks the pool: every task in it comes
    back as 'lost' and the pool is made again."""

    def __init__(self, evaluate, workers: int):
        self.evaluate, self.capacity, self.futures, self.pool = evaluate, workers, {}, None

    def _pool(self):
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(self.capacity, mp_context=multiprocessing.get_context("spawn"))
        return self.pool

    def submit(self, index: int, task: dict) -> None:
        self.futures[self._pool().submit(self.evaluate, task)] = index

    def wait(self, timeout: float):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait(list(self.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out, broken = [], False
        for future in done:
            index = self.futures.pop(future)
            try:
                out.append((index, "ok", future.result()))
            except BrokenProcessPool as error:
                broken = True
                out.append((index, "lost", f"worker process lost ({_one_line(error)})"))
            except Exception as error:  # noqa: BLE001
                out.append((index, "error", _one_line(error)))
        if broken:  # the others in the broken pool are lost too
            for future, index in list(self.futures.items()):
                out.append((index, "lost", "worker process lost (the pool broke)"))
            self.futures.clear()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
        return out

    def cancel_all(self) -> None:
        for future in self.futures:
            future.cancel()
        self.futures.clear()
        if self.pool is not None:
            processes = list((getattr(self.pool, "_processes", None) or {}).values())  # shutdown forgets them
            self.pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:  # a cancelled run does not wait for a long training to finish
                if process.is_alive():
                    process.terminate()
            self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class RayBackend:
    """One Ray task per candidate (`num_cpus=1`, or `num_gpus=1` with a GPU), results as they finish. Ray retries
    a task whose worker dies once (max_retries=1); a task lost again comes back 'lost' and is submitted anew."""

    def __init__(self, evaluate, address: str, gpu: bool | None = None):
        from spinescope.analysis.sweep.ray_runner import connect

        self.ray = connect(address)
        if gpu is None:
            gpu = self.ray.cluster_resources().get("GPU", 0) > 0
        resources = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": 1}
        self.capacity = max(1, int(self.ray.cluster_resources().get("GPU" if gpu else "CPU", 1)))
        self.task = self.ray.remote(max_retries=1, retry_exceptions=False, **resources)(evaluate)
        self.refs = {}

    def submit(self, index: int, task: dict) -> None:
        self.refs[self.task.remote(task)] = index

    def wait(self, timeout: float):
        from ray.exceptions import RayError, RayTaskError

        if not self.refs:
            return []
        ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            index = self.refs.pop(ref)
            try:
                out.append((index, "ok", self.ray.get(ref)))
            except RayTaskError as error:  # the evaluation itself raised
                out.append((index, "error", _one_line(error.cause if error.cause is not None else error)))
            except RayError as error:  # its worker or node was lost (twice, with Ray's own retry)
                out.append((index, "lost", f"Ray worker lost ({type(error).__name__})"))
        return out

    def cancel_all(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)
        self.refs.clear()

    def close(self) -> None:
        pass


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"[:300]


# ---------------------------------------------------------------------------------------------------- runs
def create_run(store: Store, config: SearchConfig, run_id: str | None = None) -> str:
    """Stores a new run of `config` (checked first) and returns its id (`run_id`, or a fresh one)."""
    check_config(config)
    run_id = check_run_id(run_id) if run_id else new_run_id()
    store.create_run(run_id, config.to_dict())
    return run_id


def request_cancel(store: Store, run_id: str) -> None:
    """Asks the run's runner (in any process) to stop: it stops within a poll interval, ends what is in flight
    (its result is not stored) and marks the run 'cancelled'. Resuming the run later continues it."""
    store.run(run_id)
    store.set_cancel(run_id, True)


def run_search(store: Store, run_id: str, *, workers: int | None = None, ray: str | None = None, on_candidate=None,
               cancel_event: threading.Event | None = None, poll_s: float = 0.25,
               evaluate=evaluate_task) -> dict:
    """Runs (or resumes) run `run_id` until its budget of candidates is evaluated or it is cancelled. Every
    result is stored as it arrives; `on_candidate(row)` is called for each (rows as `Store.candidates` returns).
    workers: 0 evaluates in this process, N a local pool of N processes (default: 2, or 0 for the cost objective,
    which takes milliseconds); ray: a Ray address ('local', 'auto', HOST:PORT, ray://HOST:PORT). Returns the run
    (`Store.run`) with its final status ('done' or 'cancelled'). `evaluate` is what each worker runs; only tests
    pass another one (one that kills its own process, to check the retry)."""
    run = store.run(run_id)
    config = check_config(SearchConfig.from_dict(run["config"]))
    finished = {row["idx"]: row for row in store.candidates(run_id)}
    store.set_cancel(run_id, False)
    store.set_status(run_id, "running")
    if ray:
        try:
            backend = RayBackend(evaluate, ray)
        except (ConnectionError, RuntimeError, ValueError) as error:
            store.set_status(run_id, "failed", "cannot connect to Ray")
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise SearchError(f"cannot use the Ray cluster {ascii(ray)}: {first[:300]}") from None
    else:
        if workers is None:
            workers = 0 if config.objective == "cost" else 2
        backend = ProcessBackend(evaluate, workers) if workers > 0 else InlineBackend(evaluate)
    in_flight: dict[int, list] = {}  # index -> [proposal, attempts]
    first_open = 0
    status, message = "running", ""
    try:
        while status == "running":
            if (cancel_event is not None and cancel_event.is_set()) or store.cancel_requested(run_id):
                backend.cancel_all()
                status, message = "cancelled", f"cancelled after {len(finished)} of {config.budget} candidates"
                break
            while first_open in finished:
                first_open += 1
            if first_open >= config.budget:
                status, message = "done", f"{config.budget} candidates evaluated"
                break
            index = first_open
            while len(in_flight) < backend.capacity and index < config.budget:
                if index not in finished and index not in in_flight:
                    if visible_until(config, index) > first_open:
                        break  # its round needs results still in flight
                    proposal = propose(config, index, finished)
                    in_flight[index] = [proposal, 1]
                    backend.submit(index, task_for(config, proposal))
                index += 1
            for index, kind, payload in backend.wait(poll_s):
                proposal, attempts = in_flight[index]
                if kind == "lost" and attempts < MAX_ATTEMPTS:
                    in_flight[index][1] += 1
                    backend.submit(index, task_for(config, proposal))
                    continue
                del in_flight[index]
                row = _row(proposal, attempts, kind, payload)
                store.add_candidate(run_id, row)
                finished[index] = row
                if on_candidate is not None:
                    on_candidate(row)
    except SpaceError as error:
        backend.cancel_all()
        status, message = "failed", str(error)
    except BaseException:
        backend.cancel_all()
        store.set_status(run_id, "cancelled", "interrupted")
        raise
    finally:
        backend.close()
    store.set_status(run_id, status, message)
    return store.run(run_id)


def _row(proposal: Proposal, attempts: int, kind: str, payload) -> dict:
    metrics = dict(proposal.metrics)
    ok = kind == "ok"
    if ok:
        metrics.update(payload["metrics"])
    return {"idx": proposal.index, "name": proposal.spec.name, "spec": spec_to_dict(proposal.spec),
            "spec_hash": spec_hash(proposal.spec), "origin": proposal.origin, "parent_idx": proposal.parent_idx,
            "move": proposal.move, "status": "done" if ok else "failed",
            "objective": payload["objective"] if ok else None, "macs": metrics["macs"], "params": metrics["params"],
            "metrics": metrics, "error": None if ok else (payload if kind == "error" else
                                                           f"{payload} ({attempts} attempts)"),
            "seconds": payload["seconds"] if ok else None, "attempts": attempts}


def best_candidate(rows: list[dict]) -> dict | None:
    """Returns the finished candidate with the highest objective (the earlier on a tie), or None."""
    done = [row for row in rows if row["status"] == "done"]
    return max(done, key=lambda row: (row["objective"], -row["idx"])) if done else None


class SearchJob:
    """A run in a background thread, for a UI: `progress()` (evaluated, budget), `cancel()`, `done()`,
    `result()` (the run, or the exception it raised). The rows are in the store meanwhile (`Store.candidates`)."""

    def __init__(self, store: Store, run_id: str, **options):
        self.store, self.run_id, self.options = store, run_id, options
        self.cancel_event = threading.Event()
        self._result, self._error = None, None
        self.thread = threading.Thread(target=self._run, name=f"search-{run_id}", daemon=True)

    def _run(self) -> None:
        try:
            self._result = run_search(self.store, self.run_id, cancel_event=self.cancel_event, **self.options)
        except BaseException as error:  # noqa: BLE001 - handed to result()
            self._error = error

    def start(self) -> "SearchJob":
        self.thread.start()
        return self

    def cancel(self) -> None:
        """Asks the run to stop (it is marked 'cancelled'; resuming continues it)."""
        self.cancel_event.set()

    def done(self) -> bool:
        """True once the run has ended (finished, cancelled or raised)."""
        return not self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits up to `timeout` seconds for the run to end; returns whether it did."""
        self.thread.join(timeout)
        return self.done()

    def progress(self) -> tuple[int, int]:
        """Returns (candidates evaluated, budget)."""
        return self.store.progress(self.run_id)[0], self.store.run(self.run_id)["config"]["budget"]

    def result(self, timeout: float | None = None) -> dict:
        """Waits for the run to end; returns it (`Store.run`) or raises what it raised."""
        self.thread.join(timeout)
        if self._error is not None:
            raise self._error
        return self._result


def start_search(store: Store, run_id: str, **options) -> SearchJob:
    """Starts `run_search(store, run_id, **options)` in a background thread and returns its SearchJob."""
    return SearchJob(store, run_id, **options).start()

"""One bounded pool for the server's heavy background work (sweeps, latency runs, fvcore verifications, searches),
fair across sessions.

At most SPINESCOPE_BACKGROUND_JOBS jobs (default 2, one per core of a small server) run at once, whoever asked.
When a slot frees, the waiting job that starts is the one whose session (browser) has the fewest jobs running,
then whose session was served least recently (round robin), then the earliest asked: a session's second job
waits behind every other session's first, so three queued
verifications of one visitor never make another's sub-second check wait for them. A waiting job knows its place
(`Ticket.queue_text`: "queued: 2nd of 3"), which the tabs show.

A job is a function run to its end in a thread of its own (`submit`), or an unstarted `LatencyJob` (a worker
process) or `SearchJob` (a thread), which `submit_latency` / `submit_search` start when its turn comes and wrap so
that the tabs use them as before.
"""
from __future__ import annotations

import itertools
import os
import threading
from typing import Callable

DEFAULT_SLOTS = 2
ENV = "SPINESCOPE_BACKGROUND_JOBS"


class BackgroundError(ValueError):
    """A bad SPINESCOPE_BACKGROUND_JOBS value (one line naming it)."""


def configured_slots() -> int:
    """Returns how many heavy jobs may run at once on this server (SPINESCOPE_BACKGROUND_JOBS, default 2); raises
    BackgroundError, one line naming the value, for anything but a whole number from 1 to 64."""
    text = os.environ.get(ENV)
    if text is None or not text.strip():
        return DEFAULT_SLOTS
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit() and 1 <= int(stripped[:4]) <= 64 and len(stripped) <= 2):
        raise BackgroundError(f"{ENV}={ascii(text)} must be a whole number from 1 to 64 (ASCII digits), e.g. "
                              f"{ENV}=2; unset it for the default ({DEFAULT_SLOTS})")
    return int(stripped)


def ordinal(number: int) -> str:
    """Returns '1st', '2nd', '3rd', '4th', ... '11th', '21st'."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class Ticket:
    """One job asked of the pool: its session key, a label, and its state ('queued', 'running', 'done' or
    'cancelled'); `result()` once done."""

    def __init__(self, pool: "Pool", owner: str, label: str, work: Callable[[], object], order: int):
        self.pool, self.owner, self.label, self.work, self.order = pool, owner, label, work, order
        self.state = "queued"
        self.value = None
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def done(self) -> bool:
        """True once the job has returned, raised or was cancelled before it started."""
        return self.finished.is_set()

    def result(self, timeout: float | None = None):
        """Returns what the job returned (raises what it raised); TimeoutError if it has not ended in `timeout` s."""
        if not self.finished.wait(timeout):
            raise TimeoutError(f"{self.label} has not finished")
        if self.error is not None:
            raise self.error
        return self.value

    def position(self) -> tuple[int, int] | None:
        """Returns (place, waiting) while queued (1-based: 1 starts next), else None."""
        return self.pool.position(self)

    def queue_text(self) -> str | None:
        """Returns 'queued: 2nd of 3' while the job waits for a slot, else None."""
        where = self.position()
        return None if where is None else f"queued: {ordinal(where[0])} of {where[1]}"

    def cancel(self) -> bool:
        """Takes a queued job off the queue (it never starts; returns True); False once it has started."""
        return self.pool.cancel(self)


class Pool:
    """At most `slots` jobs running at once, started fairly across owners (see the module's docstring)."""

    def __init__(self, slots: int):
        self.slots = slots
        self._lock = threading.Lock()
        self._waiting: list[Ticket] = []
        self._running: list[Ticket] = []
        self._orders = itertools.count()
        self._served: dict[str, int] = {}  # owner -> when (a dispatch count) its last job started
        self._dispatches = itertools.count()
        self.peak = 0  # the most jobs that ever ran at once (for tests and the log)
        self.started: list[str] = []  # labels in the order they started

    def submit(self, owner: str, label: str, work: Callable[[], object]) -> Ticket:
        """Queues `work()` for session `owner`; returns its Ticket (it may start at once)."""
        with self._lock:
            ticket = Ticket(self, owner, label, work, next(self._orders))
            self._waiting.append(ticket)
            self._dispatch()
        return ticket

    def running(self) -> int:
        """Returns how many jobs run now."""
        with self._lock:
            return len(self._running)

    def _next_order(self) -> list[Ticket]:
        """The waiting tickets in the order they would start: fewest running jobs of the same owner first (counting
        those ahead in this order), then the owner served least recently, then the earliest asked."""
        busy: dict[str, int] = {}
        for ticket in self._running:
            busy[ticket.owner] = busy.get(ticket.owner, 0) + 1
        served, later = dict(self._served), itertools.count(10**12)
        waiting, order = list(self._waiting), []
        while waiting:
            chosen = min(waiting, key=lambda ticket: (busy.get(ticket.owner, 0), served.get(ticket.owner, -1),
                                                      ticket.order))
            waiting.remove(chosen)
            order.append(chosen)
            busy[chosen.owner] = busy.get(chosen.owner, 0) + 1
            served[chosen.owner] = next(later)
        return order

    def _dispatch(self) -> None:
        while self._waiting and len(self._running) < self.slots:
            ticket = self._next_order()[0]
            self._waiting.remove(ticket)
            self._running.append(ticket)
            self._served[ticket.owner] = next(self._dispatches)
            ticket.state = "running"
            self.started.append(ticket.label)
            self.peak = max(self.peak, len(self._running))
            threading.Thread(target=self._run, args=(ticket,), name=f"background-{ticket.label[:20]}",
                             daemon=True).start()

    def _run(self, ticket: Ticket) -> None:
        try:
            ticket.value = ticket.work()
        except BaseException as error:  # noqa: BLE001 - handed to whoever reads the result
            ticket.error = error
        finally:
            with self._lock:
                self._running.remove(ticket)
                active = {other.owner for other in self._running + self._waiting}
                self._served = {owner: when for owner, when in self._served.items() if owner in active}
                ticket.state = "done"
                ticket.finished.set()
                self._dispatch()

    def position(self, ticket: Ticket) -> tuple[int, int] | None:
        """Returns (place, waiting) of a queued ticket, else None."""
        with self._lock:
            if ticket not in self._waiting:
                return None
            return self._next_order().index(ticket) + 1, len(self._waiting)

    def cancel(self, ticket: Ticket) -> bool:
        """Removes a queued ticket; returns False if it already started."""
        with self._lock:
            if ticket not in self._waiting:
                return False
            self._waiting.remove(ticket)
            ticket.state = "cancelled"
            ticket.finished.set()
            return True


class QueuedJob:
    """An unstarted job (a LatencyJob for a sweep or a latency run, a SearchJob) that waits for its turn in the pool:
    started by the pool, used like the job itself (progress, done, cancel, result) by the tabs and the sweep
    watcher. `cancelled` makes the error `result()` raises for a job cancelled while it was queued."""

    def __init__(self, pool: Pool, owner: str, label: str, job, cancelled: Callable[[], BaseException]):
        self.job, self.cancelled = job, cancelled
        self.ticket = pool.submit(owner, label, self._run)

    def _run(self) -> None:
        self.job.start()
        self.job.wait()

    def queue_text(self) -> str | None:
        """Returns 'queued: 2nd of 3' while waiting for a slot, else None."""
        return self.ticket.queue_text()

    def progress(self):
        """Returns the job's progress (a LatencyJob's says 'pending' while queued; a SearchJob's counts the stored
        candidates)."""
        return self.job.progress()

    def done(self) -> bool:
        """True once the job ended, or was cancelled while queued."""
        return self.ticket.done() and (self.ticket.state == "cancelled" or self.job.done())

    def wait(self, timeout: float | None = None) -> bool:
        """Waits up to `timeout` seconds for the job to end; returns whether it did."""
        return self.ticket.finished.wait(timeout) and self.done()

    def cancel(self) -> None:
        """Takes it off the queue, or stops its worker."""
        if not self.ticket.cancel():
            self.job.cancel()

    def result(self, timeout: float | None = None):
        """The job's results; the `cancelled` error when it was cancelled while queued."""
        if not self.wait(timeout):
            raise TimeoutError("the job is still running")
        if self.ticket.state == "cancelled":
            raise self.cancelled()
        return self.job.result(timeout=0)


_POOLS: dict[int, Pool] = {}
_POOLS_LOCK = threading.Lock()


def pool() -> Pool:
    """Returns this server's pool (one per process and configured size). Raises BackgroundError for a bad
    SPINESCOPE_BACKGROUND_JOBS."""
    slots = configured_slots()
    with _POOLS_LOCK:
        if slots not in _POOLS:
            _POOLS[slots] = Pool(slots)
        return _POOLS[slots]


def _latency_cancelled() -> BaseException:
    from spinescope.analysis.latency.errors import LatencyError

    return LatencyError("cancelled", "cancelled while queued")


def submit_latency(owner: str, label: str, job) -> QueuedJob:
    """Queues an unstarted LatencyJob (a sweep or a latency run) for session `owner`; returns it wrapped."""
    return QueuedJob(pool(), owner, label, job, _latency_cancelled)


def _search_cancelled() -> BaseException:
    from spinescope.analysis.search import SearchError

    return SearchError("cancelled while queued; the run is stored, resume it later")


def submit_search(owner: str, label: str, job) -> QueuedJob:
    """Queues an unstarted SearchJob for session `owner`; returns it wrapped."""
    return QueuedJob(pool(), owner, label, job, _search_cancelled)


def submit(owner: str, label: str, work: Callable[[], object]) -> Ticket:
    """Queues `work()` (a blocking function: an fvcore trace) for session `owner`; returns its Ticket."""
    return pool().submit(owner, label, work)


_busy_sources: list[Callable[[], set[str]]] = []  # each registry of workspace runs (app.workspace_runs) adds one
_busy_lock = threading.Lock()


def register_busy(workspaces: Callable[[], set[str]]) -> None:
    """Adds a source of workspace ids that have a background run on this server (`busy_workspaces` reads it)."""
    with _busy_lock:
        _busy_sources.append(workspaces)


def busy_workspaces() -> set[str]:
    """Returns the ids of the workspaces with a background run of any kind on this server (their results are still
    to be stored there, so they are never removed to make room; see `app.session`)."""
    with _busy_lock:
        sources = list(_busy_sources)
    return set().union(*(source() for source in sources))

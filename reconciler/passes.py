"""One pass over many calendars, ``concurrency`` at a time (what ``once`` runs).

Why: ``once`` syncs every calendar in parallel, with leases claimed a batch
at a time, and must never let one sick calendar stop the others. Each
calendar goes through :class:`~reconciler.attempt.Attempts` (the same attempt
``run`` makes); what it raised becomes a line of the
:class:`~reconciler.report.PassReport` through :func:`~reconciler.report.failure_of`.

Invariants: a stop (``stopping``: Ctrl-C, SIGTERM) starts no new calendar,
lets each calendar in flight finish its page, marks the report ``stopped``
(a stopped calendar is no failure) and gives back every batch-claimed lease
no attempt used. The worker threads live as long as their owner, so each
thread's API handles and engines are built once, not once per pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from reconciler.attempt import Attempts
from reconciler.errors import LeaseHeld, SyncStopped
from reconciler.outcome import CalendarState, PageCommitted, SyncRequest
from reconciler.report import PassReport, failure_of


class PassObserver(Protocol):
    """Told about each calendar of a pass (``reconciler.progress`` fits): the one way in."""

    def calendar_started(self, calendar_id: str, account: str) -> None:
        """The pass over ``calendar_id`` is about to claim and sync it."""

    def page_committed(self, report: PageCommitted) -> None:
        """One page of a calendar was committed (running totals for its pass)."""

    def calendar_finished(self, calendar_id: str) -> None:
        """The pass over ``calendar_id`` succeeded (its counts are in the report)."""

    def calendar_failed(self, calendar_id: str, message: str) -> None:
        """The pass over ``calendar_id`` failed with the one-line ``message``."""


class PassRunner:
    """Runs passes over many calendars on a pool of worker threads kept between passes."""

    def __init__(self, attempts: Attempts) -> None:
        self.attempts = attempts
        self._pool: ThreadPoolExecutor | None = None
        self._workers = 0

    def run(self, states: Iterable[CalendarState], request: SyncRequest, workers: int,
            observer: PassObserver | None = None) -> PassReport:
        """Sync ``states`` once, ``workers`` at a time; every outcome and failure reported."""
        attempts = self.attempts
        stopping = attempts.stopping
        report = PassReport()
        lock = threading.Lock()
        on_page = observer.page_committed if observer is not None else None

        def _failed(state: CalendarState, exc: BaseException) -> None:
            failure = failure_of(state.calendar_id, exc, state.account,
                                 identity=attempts.handles.identity(state.account),
                                 calendar_id=state.calendar_id)
            with lock:
                report.failures.append(failure)
            if observer is not None:
                observer.calendar_failed(state.calendar_id, failure.message)

        def one(state: CalendarState) -> None:
            if stopping.is_set():
                return
            if observer is not None:
                observer.calendar_started(state.calendar_id, state.account)
            try:
                attempt = attempts.attempt(state, request, on_page)
            except (SyncStopped, LeaseHeld) as exc:
                if isinstance(exc, LeaseHeld) and not stopping.is_set():
                    _failed(state, exc)
                    return
                with lock:
                    report.stopped = True
                if observer is not None:
                    observer.calendar_failed(state.calendar_id, "stopped")
                return
            except Exception as exc:  # one calendar never stops the others
                _failed(state, exc)
                return
            with lock:
                if attempt.outcome is not None:
                    report.results.append(attempt.outcome)
                if attempt.audit is not None:
                    report.audits.append(attempt.audit)
            if observer is not None:
                observer.calendar_finished(state.calendar_id)

        workers = max(1, workers)
        pool = self._pool_of(workers)
        # Leases are claimed a batch (``workers`` calendars) at a time, one UPDATE
        # and one SELECT each, and at most two batches ahead of the workers, so
        # a claimed calendar waits for a worker at most one batch's time.
        ahead = threading.Semaphore(2 * workers)

        def run_one(state: CalendarState) -> None:
            try:
                one(state)
            finally:
                ahead.release()

        states = list(states)
        submitted: list[tuple[CalendarState, Future[None]]] = []
        for start in range(0, len(states), workers):
            chunk = states[start:start + workers]
            for _ in chunk:
                while not ahead.acquire(timeout=0.2):
                    if stopping.is_set():
                        break
            if stopping.is_set():
                break
            attempts.claim_batch(chunk)
            submitted += [(state, pool.submit(run_one, state)) for state in chunk]
        for _state, future in submitted:
            future.result()  # ``one`` catches everything
        attempts.release_unused([state.pk for state, _ in submitted])
        if stopping.is_set():
            report.stopped = True
        return report

    def _pool_of(self, workers: int) -> ThreadPoolExecutor:
        if self._pool is None or self._workers != workers:
            self.close()
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync")
            self._workers = workers
        return self._pool

    def close(self) -> None:
        """Wait for the workers and stop them."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


__all__ = ["PassObserver", "PassRunner"]

"""Progress of a pass over many calendars: a live display on a terminal, log lines elsewhere.

Why: against Google a large first sync takes minutes, and a command that prints
nothing meanwhile cannot be told from a hung one. The engine reports each
committed page (``reconciler.outcome.PageCommitted``); this module turns those
reports into

- on a terminal, a live ``rich`` display: one line per calendar in flight (mode,
  pages, events, rate, elapsed) under an overall bar over the calendars;
- without a terminal, one INFO log line per calendar in flight at least every
  ``interval`` (10 s) seconds, through ``logging`` so it follows
  ``--log-format``: "work@example.com: page 12, 30,000 events, 2,480/s";
- the summary line of ``once`` (:class:`PassSummary`), folded from the pass
  report, not from what the display saw.

Invariants:

- Every public method may be called from any thread (calendars sync in
  parallel); all state sits behind one lock, and ``rich`` has its own.
- Page reports carry running totals for the pass (``items`` = events seen so
  far), so a lost or repeated report never skews the numbers; counts never go
  backwards within a pass.
- Time comes from an injected monotonic ``clock``; the only real-time wait is
  the background ticker of :class:`LogProgress`, which merely asks "is a line
  due?" (tests call :meth:`LogProgress.tick` themselves).
- Pages arrive as :class:`reconciler.outcome.PageCommitted`; the display counts
  calendars, the pass report counts events.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from reconciler.outcome import Counts, PageCommitted
from reconciler.report import PassReport

if TYPE_CHECKING:  # rich costs ~20 ms to import: only a terminal display needs it
    from rich.console import Console
    from rich.progress import TaskID

log = logging.getLogger("reconciler.progress")

Clock = Callable[[], float]


@dataclass
class CalendarInFlight:
    """The progress of one calendar's pass so far."""

    calendar_id: str
    account: str
    started: float
    mode: str = ""
    pages: int = 0
    events: int = 0
    last_line: float = 0.0

    def rate(self, now: float) -> float:
        """Events per second since the pass started (0 before any time has passed)."""
        elapsed = now - self.started
        return self.events / elapsed if elapsed > 0 else 0.0

    def line(self, now: float) -> tuple[str, dict[str, Any]]:
        """"work@example.com: page 12, 30,000 events, 2,480/s" and its fields."""
        rate = self.rate(now)
        message = (f"{self.calendar_id}: page {self.pages}, {self.events:,} events, "
                   f"{rate:,.0f}/s")
        fields = {"calendar": self.calendar_id, "account": self.account, "mode": self.mode,
                  "page": self.pages, "events": self.events, "rate": round(rate, 1),
                  "seconds": round(now - self.started, 3)}
        return message, fields


@dataclass(frozen=True)
class PassSummary:
    """The totals of a whole ``once``, folded from its pass report (never from the display).

    ``counts`` adds up every pass and every ``--verify`` audit, so the summary
    agrees with the per-pass log lines; ``accounts_failed`` names accounts whose
    calendar set could not be read (they have no calendar to count as failed).
    """

    synced: int = 0
    failed: int = 0
    counts: Counts = field(default_factory=Counts)
    requests: int = 0
    seconds: float = 0.0
    accounts_failed: tuple[str, ...] = ()

    @classmethod
    def of(cls, report: PassReport, seconds: float) -> PassSummary:
        """The summary of ``report`` (a pass that took ``seconds``)."""
        passes = [*report.results, *report.audits]
        accounts = tuple(dict.fromkeys(f.account or f.subject for f in report.failures
                                       if f.subject.startswith("account ")))
        return cls(synced=len(report.results),
                   failed=sum(1 for f in report.failures if not f.subject.startswith("account ")),
                   counts=sum((p.counts for p in passes), Counts()),
                   requests=sum(p.requests for p in passes), seconds=seconds,
                   accounts_failed=accounts)

    @property
    def line(self) -> str:
        """"synced 61 calendars, 0 failed; 30,000 created, 2 updated, 0 deleted; 41 requests; 12.3 s"."""
        calendars = "calendar" if self.synced == 1 else "calendars"
        requests = "request" if self.requests == 1 else "requests"
        c = self.counts
        accounts = ""
        if self.accounts_failed:
            noun = "account" if len(self.accounts_failed) == 1 else "accounts"
            accounts = f", {noun} {', '.join(self.accounts_failed)} failed"
        return (f"synced {self.synced:,} {calendars}, {self.failed:,} failed{accounts}; "
                f"{c.created:,} created, {c.updated:,} updated, {c.deleted:,} deleted; "
                f"{self.requests:,} {requests}; {self.seconds:.1f} s")

    @property
    def fields(self) -> dict[str, Any]:
        """The summary as log fields (``created`` etc.: log them through structlog)."""
        fields: dict[str, Any] = {"calendars": self.synced, "failed": self.failed,
                                  **self.counts.changes, "requests": self.requests,
                                  "seconds": round(self.seconds, 3)}
        if self.accounts_failed:
            fields["accounts_failed"] = list(self.accounts_failed)
        return fields


def log_summary(summary: PassSummary, logger: logging.Logger | str = "reconciler.once") -> None:
    """Log the summary as one INFO line with fields (follows ``--log-format``)."""
    from reconciler.logsetup import log_fields

    log_fields(logger, logging.INFO, summary.line, summary.fields)


class PassProgress:
    """Thread-safe bookkeeping of a pass over ``total`` calendars; subclasses show it.

    Use as a context manager (``start``/``close``). ``page_committed`` fits the
    engine's ``PageCallback``.
    """

    def __init__(self, total: int, *, clock: Clock = time.monotonic) -> None:
        self.total = total
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._in_flight: dict[str, CalendarInFlight] = {}
        self._synced = 0
        self._failed = 0

    # -- reports (any thread) -------------------------------------------------
    def calendar_started(self, calendar_id: str, account: str) -> None:
        """A pass over ``calendar_id`` began."""
        now = self.clock()
        with self._lock:
            self._in_flight[calendar_id] = CalendarInFlight(
                calendar_id, account, started=now, last_line=now)
        self._shown_started(calendar_id)

    def page_committed(self, report: PageCommitted) -> None:
        """One page of ``report.calendar_id`` was committed (running totals for the pass)."""
        now = self.clock()
        with self._lock:
            cal = self._in_flight.get(report.calendar_id)
            if cal is None:  # no calendar_started: start it now
                cal = CalendarInFlight(report.calendar_id, report.account, started=now,
                                       last_line=now)
                self._in_flight[report.calendar_id] = cal
                new = True
            else:
                new = False
            cal.mode = report.mode
            cal.pages = max(cal.pages, report.page)
            cal.events = max(cal.events, report.items)
            snapshot = CalendarInFlight(**vars(cal))
        if new:
            self._shown_started(report.calendar_id)
        self._shown_page(snapshot, now)

    def calendar_finished(self, calendar_id: str) -> None:
        """The pass over ``calendar_id`` succeeded (its counts are in the pass report)."""
        with self._lock:
            self._in_flight.pop(calendar_id, None)
            self._synced += 1
        self._shown_ended(calendar_id, failed=False)

    def calendar_failed(self, calendar_id: str, message: str) -> None:
        """The pass over ``calendar_id`` failed (``message``: its one-line error)."""
        with self._lock:
            self._in_flight.pop(calendar_id, None)
            self._failed += 1
        self._shown_ended(calendar_id, failed=True, message=message)

    # -- reading ---------------------------------------------------------------
    def in_flight(self) -> list[CalendarInFlight]:
        """Copies of the calendars in flight, oldest first."""
        with self._lock:
            cals = [CalendarInFlight(**vars(c)) for c in self._in_flight.values()]
        return sorted(cals, key=lambda c: (c.started, c.calendar_id))

    def done(self) -> tuple[int, int]:
        """(synced, failed) calendars so far: what the overall bar shows."""
        with self._lock:
            return self._synced, self._failed

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Begin showing progress."""

    def close(self) -> None:
        """Stop showing progress (idempotent)."""

    def __enter__(self) -> PassProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- display hooks (called outside the lock) --------------------------------
    def _shown_started(self, calendar_id: str) -> None:
        pass

    def _shown_page(self, cal: CalendarInFlight, now: float) -> None:
        pass

    def _shown_ended(self, calendar_id: str, *, failed: bool, message: str = "") -> None:
        pass


class LogProgress(PassProgress):
    """Without a terminal: one INFO line per calendar in flight at least every ``interval`` s.

    A background thread asks every ``poll`` seconds (real time) whether a line is
    due by ``clock``, so a page that stalls for a minute still gets its lines.
    """

    def __init__(self, total: int, *, clock: Clock = time.monotonic, interval: float = 10.0,
                 poll: float = 1.0, logger: logging.Logger | None = None) -> None:
        super().__init__(total, clock=clock)
        self.interval = interval
        self.poll = poll
        self.log = logger or log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int:
        """Log a line for every calendar whose last line is ``interval`` old; return how many."""
        now = self.clock()
        due: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for cal in self._in_flight.values():
                if now - cal.last_line >= self.interval:
                    cal.last_line = now
                    due.append(cal.line(now))
        for message, fields in due:
            self.log.info(message, extra=fields)
        return len(due)

    def _shown_page(self, cal: CalendarInFlight, now: float) -> None:
        if now - cal.last_line >= self.interval:
            self.tick()

    def start(self) -> None:
        """Start the ticker thread (a daemon: it never keeps the process alive)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="progress-ticker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.tick()

    def close(self) -> None:
        """Stop the ticker thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class LiveProgress(PassProgress):
    """On a terminal: a ``rich`` live display, log lines printed above it."""

    def __init__(self, total: int, *, console: Console | None = None,
                 clock: Clock = time.monotonic, refresh_per_second: float = 4,
                 auto_refresh: bool = True) -> None:
        from rich.console import Console, Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column

        super().__init__(total, clock=clock)
        self.console = console or Console(file=sys.stderr)
        self.overall = Progress(
            TextColumn("[bold]calendars"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[in_flight]} in flight"), TimeElapsedColumn(),
            console=self.console, get_time=clock)
        self.calendars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}",
                       table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            TextColumn("{task.fields[mode]}"),
            TextColumn("page {task.fields[page]}"),
            TextColumn("{task.completed:>10,.0f} events"),
            TextColumn("{task.fields[rate]:>8,.0f}/s"),
            TimeElapsedColumn(),
            console=self.console, get_time=clock, expand=True)
        self._overall_task = self.overall.add_task("calendars", total=total, failed=0,
                                                   in_flight=0)
        self._tasks: dict[str, TaskID] = {}
        self.live = Live(Group(self.overall, self.calendars), console=self.console,
                         refresh_per_second=refresh_per_second, auto_refresh=auto_refresh,
                         transient=False,
                         redirect_stderr=True, redirect_stdout=False)

    def _count_in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def _shown_started(self, calendar_id: str) -> None:
        with self._lock:
            if calendar_id in self._tasks:
                return
            self._tasks[calendar_id] = self.calendars.add_task(
                calendar_id, total=None, mode="", page=0, rate=0.0)
        self.overall.update(self._overall_task, in_flight=self._count_in_flight())

    def _shown_page(self, cal: CalendarInFlight, now: float) -> None:
        with self._lock:
            task = self._tasks.get(cal.calendar_id)
        if task is not None:
            self.calendars.update(task, completed=cal.events, mode=cal.mode, page=cal.pages,
                                  rate=cal.rate(now))

    def _shown_ended(self, calendar_id: str, *, failed: bool, message: str = "") -> None:
        with self._lock:
            task = self._tasks.pop(calendar_id, None)
            failed_total = self._failed
        if task is not None:
            self.calendars.remove_task(task)
        self.overall.update(self._overall_task, advance=1, failed=failed_total,
                            in_flight=self._count_in_flight())

    def refresh(self) -> None:
        """Redraw now (the display also redraws on its own while started)."""
        self.live.refresh()

    def start(self) -> None:
        """Show the display."""
        self.live.start()

    def close(self) -> None:
        """Leave the last frame on screen and restore stderr."""
        self.live.stop()


def make_progress(total: int, *, stream: IO[str] | None = None, console: Console | None = None,
                  clock: Clock = time.monotonic) -> PassProgress:
    """A live display when ``stream`` (default stderr) is a terminal, else log lines."""
    target = stream if stream is not None else sys.stderr
    if console is not None:
        return LiveProgress(total, console=console, clock=clock)
    if target.isatty():
        from rich.console import Console

        return LiveProgress(total, console=Console(file=target), clock=clock)
    return LogProgress(total, clock=clock)


__all__ = ["CalendarInFlight", "LiveProgress", "LogProgress",
           "PassProgress", "PassSummary", "log_summary", "make_progress"]

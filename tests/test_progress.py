"""Progress: log lines without a terminal (injected clock), a rich display on one, the summary."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator

import pytest
from rich.console import Console

from reconciler.logsetup import configure_logging
from reconciler.outcome import Counts, Cursor, PageCommitted, PassOutcome
from reconciler.progress import (
    LiveProgress,
    LogProgress,
    PassSummary,
    log_summary,
    make_progress,
)
from reconciler.report import Failure, PassReport

WORK = "work@example.com"
TEAM = "team@group.calendar.google.com"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def page(calendar: str, n: int, per_page: int = 2500, account: str = "ops") -> PageCommitted:
    return PageCommitted(calendar, account, "full", n, n * per_page, Counts(created=n * per_page))


def outcome(calendar: str, created: int = 0, updated: int = 0, requests: int = 0) -> PassOutcome:
    return PassOutcome(calendar, "ops", "full", Cursor(), counts=Counts(created, updated),
                       requests=requests)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record logged on reconciler.progress, whatever the global config."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("reconciler.progress")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield seen
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_non_tty_logs_each_calendar_in_flight_every_ten_seconds(
        records: list[logging.LogRecord]) -> None:
    clock = FakeClock()
    progress = LogProgress(2, clock=clock)
    progress.calendar_started(WORK, "ops")
    progress.calendar_started(TEAM, "ops")
    clock.advance(3)
    progress.page_committed(page(WORK, 1))
    clock.advance(6.9)
    assert progress.tick() == 0 and records == []
    clock.advance(0.1)  # 10 s after the start
    assert progress.tick() == 2
    lines = {r.calendar: r for r in records}  # type: ignore[attr-defined]
    assert lines[WORK].getMessage() == f"{WORK}: page 1, 2,500 events, 250/s"
    assert lines[TEAM].getMessage() == f"{TEAM}: page 0, 0 events, 0/s"
    assert lines[WORK].levelno == logging.INFO
    assert (lines[WORK].page, lines[WORK].events, lines[WORK].rate) == (1, 2500, 250.0)  # type: ignore[attr-defined]
    records.clear()

    # Pages arrive in between (a line on the page that makes it due), then the listing stalls:
    # a line still comes every 10 s.
    for n in range(2, 12):
        clock.advance(1)
        progress.page_committed(page(WORK, n))
    assert [r.getMessage() for r in records] == [f"{WORK}: page 11, 27,500 events, 1,375/s",
                                                 f"{TEAM}: page 0, 0 events, 0/s"]
    progress.calendar_finished(TEAM)
    clock.advance(1)
    progress.page_committed(page(WORK, 12))
    assert len(records) == 2
    clock.advance(9)
    progress.tick()
    for _ in range(2):
        clock.advance(10)
        progress.tick()
    assert [r.getMessage() for r in records[2:]] == [
        f"{WORK}: page 12, 30,000 events, {30000 / t:,.0f}/s" for t in (30, 40, 50)]
    assert {r.calendar for r in records[2:]} == {WORK}  # type: ignore[attr-defined]


def test_a_sync_shorter_than_the_interval_logs_no_progress_line(
        records: list[logging.LogRecord]) -> None:
    clock = FakeClock()
    progress = LogProgress(1, clock=clock)
    progress.calendar_started(WORK, "ops")
    clock.advance(4)
    progress.page_committed(page(WORK, 1))
    progress.calendar_finished(WORK)
    clock.advance(60)
    assert progress.tick() == 0 and records == []


def test_the_ticker_thread_logs_while_no_page_arrives(records: list[logging.LogRecord]) -> None:
    clock = FakeClock()
    logged = threading.Event()
    logger = logging.getLogger("reconciler.progress")

    class Signal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.set()

    signal = Signal()
    logger.addHandler(signal)
    try:
        with LogProgress(1, clock=clock, poll=0.01) as progress:
            progress.calendar_started(WORK, "ops")
            clock.advance(10)
            assert logged.wait(30), "the ticker never logged"
    finally:
        logger.removeHandler(signal)
    assert records[0].getMessage() == f"{WORK}: page 0, 0 events, 0/s"


def test_progress_lines_follow_the_json_log_format(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("reconciler").level
    configure_logging("INFO", "json")
    try:
        clock = FakeClock()
        progress = LogProgress(1, clock=clock)
        progress.calendar_started(WORK, "ops")
        clock.advance(12)
        progress.page_committed(page(WORK, 12))
        summary = PassSummary(synced=61, failed=0, counts=Counts(created=30000, updated=2),
                              requests=41, seconds=12.34)
        log_summary(summary)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("reconciler").setLevel(saved[2])
    first, second = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert first["event"] == f"{WORK}: page 12, 30,000 events, 2,500/s"
    assert (first["calendar"], first["account"], first["mode"]) == (WORK, "ops", "full")
    assert (first["page"], first["events"], first["rate"], first["level"]) == (12, 30000, 2500.0,
                                                                               "INFO")
    assert second["event"] == ("synced 61 calendars, 0 failed; 30,000 created, 2 updated, "
                               "0 deleted; 41 requests; 12.3 s")
    assert (second["calendars"], second["created"], second["requests"]) == (61, 30000, 41)


def test_the_display_counts_calendars_from_many_threads() -> None:
    clock = FakeClock()
    progress = LogProgress(40, clock=clock)

    def worker(n: int) -> None:
        for i in range(5):
            cal = f"c{n}-{i}@example.com"
            progress.calendar_started(cal, "ops")
            for p in range(1, 4):
                progress.page_committed(page(cal, p, per_page=10))
            if i == 4:
                progress.calendar_failed(cal, "403 forbidden")
            else:
                progress.calendar_finished(cal)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert progress.done() == (32, 8)
    assert progress.in_flight() == []


def test_summary_folds_the_pass_report_passes_and_audits() -> None:
    report = PassReport(
        results=[outcome(f"c{n}@example.com", created=30, updated=1, requests=3)
                 for n in range(32)],
        audits=[outcome("c0@example.com", created=1, requests=1)],
        failures=[Failure(f"f{n}@example.com", "403 forbidden", "AccessDenied", "ops")
                  for n in range(8)] + [Failure("account ops", "cannot resolve", "AuthFailed",
                                                "ops")])
    summary = PassSummary.of(report, 7.25)
    assert summary == PassSummary(synced=32, failed=8, counts=Counts(created=961, updated=32),
                                  requests=97, seconds=7.25, accounts_failed=("ops",))
    assert summary.line == ("synced 32 calendars, 8 failed, account ops failed; 961 created, "
                            "32 updated, 0 deleted; 97 requests; 7.2 s")


def test_summary_line_singular() -> None:
    assert PassSummary(synced=1, requests=1, seconds=0.04).line == (
        "synced 1 calendar, 0 failed; 0 created, 0 updated, 0 deleted; 1 request; 0.0 s")


def render(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return ANSI.sub("", file.getvalue())


@pytest.fixture
def text_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("reconciler").level
    configure_logging("INFO", "text")
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("reconciler").setLevel(saved[2])


def test_tty_shows_a_line_per_calendar_in_flight_and_an_overall_bar(text_logging: None) -> None:
    clock = FakeClock()
    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    progress = make_progress(2, console=console, clock=clock)
    assert isinstance(progress, LiveProgress)
    progress.live.auto_refresh = False
    with progress:
        progress.calendar_started(WORK, "ops")
        progress.calendar_started(TEAM, "ops")
        clock.advance(12)
        progress.page_committed(page(WORK, 12))
        progress.page_committed(page(TEAM, 1, per_page=40))
        progress.refresh()
        frame = render(console)
        last = frame[frame.rfind("calendars"):]
        assert "0/2" in last and "2 in flight" in last
        work_line = next(line for line in last.splitlines() if WORK in line)
        assert "full" in work_line and "page 12" in work_line
        assert "30,000 events" in work_line and "2,500/s" in work_line
        assert "0:00:12" in work_line
        assert any(TEAM in line and "40 events" in line for line in last.splitlines())

        # A log line while the display runs is printed above it, not through it.
        logging.getLogger("reconciler.cli").warning("a warning while syncing")
        progress.calendar_failed(TEAM, "403 forbidden")
        progress.calendar_finished(WORK)
        progress.refresh()
    frame = render(console)
    last = frame[frame.rfind("calendars"):]
    assert "2/2" in last and "1 failed" in last and "0 in flight" in last
    assert WORK not in last  # finished calendars leave the display
    (warning,) = [line for line in frame.splitlines() if "a warning while syncing" in line]
    assert re.search(r"WARNING reconciler\.cli: a warning while syncing$", warning), warning


def test_without_a_terminal_make_progress_logs() -> None:
    assert isinstance(make_progress(3, stream=io.StringIO()), LogProgress)

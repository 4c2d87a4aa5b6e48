"""The pure decisions of ``run``: a calendar's next run and why, the calendar-set diff,
the interval's one owner, ``/healthz`` readiness, one line per cause.

No scheduler, no database: each rule is a function (or a small object with an
injected clock) tested directly; Hypothesis checks the next-run rule over
arbitrary rows and outcomes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.config import load_config
from reconciler.daemon.backoff import REAUTH_RETRY, resolve_retry_delay
from reconciler.daemon.calendarset import Entry, Resolution, SetDiff, diff
from reconciler.daemon.causes import Causes
from reconciler.daemon.generations import Generations
from reconciler.daemon.planning import Decision, Ended, Plan, decide
from reconciler.daemon.readiness import readiness
from reconciler.errors import (
    AuthFailed,
    CalendarNotFound,
    DatabaseUnavailable,
    RateLimited,
    TransientGoogleError,
)
from reconciler.intervals import interval_of
from reconciler.outcome import CalendarState
from tests.helpers import write_config

NOW = dt.datetime(2025, 3, 1, 12, 0, 0)
EARLIER = dt.datetime(2025, 3, 1, 11, 0, 0)


def row(**fields: object) -> CalendarState:
    values: dict[str, object] = {"pk": 1, "calendar_id": "c@x", "account": "ops"}
    values.update(fields)
    return CalendarState(**values)  # type: ignore[arg-type]


def after(ended: Ended, *, interval: float = 60, started: dt.datetime = NOW,
          now: dt.datetime = NOW, rand: float = 1.0) -> Decision:
    return decide(row(), None, now, interval, started=started, ended=ended,
                  process_started=EARLIER, backoff_max=600, rand=lambda: rand)


# -- a calendar's next run: one function ---------------------------------------------------------

def test_before_a_pass_the_due_time_stored_with_it_is_one_interval_after_the_start() -> None:
    decision = decide(row(), None, NOW, 60, started=NOW, first=True, process_started=EARLIER)
    assert (decision.sync, decision.reason, decision.next_run) == (
        True, "first", NOW + dt.timedelta(seconds=60))
    later = NOW + dt.timedelta(seconds=30)
    waiting = decide(row(next_due=later), None, NOW, 60, started=NOW, process_started=EARLIER)
    assert (waiting.sync, waiting.reason, waiting.next_run, waiting.hold) == (
        False, "not_due", later, False)
    backoff = decide(row(next_due=later, consecutive_failures=2), None, NOW, 60, started=NOW,
                     process_started=EARLIER)
    assert (backoff.reason, backoff.next_run, backoff.hold) == ("backoff", later, True)
    removed = decide(row(removed=True), None, NOW, 60, started=NOW, process_started=EARLIER)
    assert (removed.sync, removed.next_run) == (False, None)


def test_after_a_look_each_ending_has_its_next_run_and_reason() -> None:
    started = NOW - dt.timedelta(seconds=7)
    on_time = NOW + dt.timedelta(seconds=53)
    synced = after(Ended("synced"), started=started)
    assert (synced.reason, synced.next_run, synced.hold) == ("synced", on_time, False)
    held = after(Ended("lease_held"), started=started)
    assert (held.reason, held.next_run) == ("lease_held", on_time)
    stored = NOW + dt.timedelta(seconds=20)
    assert after(Ended("just_synced", stored_due=stored)).next_run == stored
    assert after(Ended("just_synced"), started=started).next_run == on_time
    error = after(Ended("error"))
    assert (error.reason, error.next_run) == ("error", NOW + dt.timedelta(seconds=60))
    parked = NOW + dt.timedelta(minutes=15)
    skipped = after(Ended("skipped", plan=Plan(False, "needs_reauth", wait_until=parked)))
    assert (skipped.reason, skipped.next_run, skipped.hold) == ("needs_reauth", parked, True)
    # A pass longer than the interval: the next one is due now, never in the past.
    assert after(Ended("synced"), interval=5, started=started).next_run == NOW


def test_a_failure_backs_off_by_its_kind() -> None:
    first = after(Ended("failed", error=TransientGoogleError("x", status=503), failures=1))
    assert (first.reason, first.hold, first.next_run) == (
        "backoff", True, NOW + dt.timedelta(seconds=30))
    assert first.delay is not None and first.delay.seconds == 30
    third = after(Ended("failed", error=TransientGoogleError("x", status=503), failures=3))
    assert third.next_run == NOW + dt.timedelta(seconds=120)
    limited = after(Ended("failed", error=RateLimited("x", retry_after=400), failures=1))
    assert (limited.reason, limited.next_run) == ("retry_after", NOW + dt.timedelta(seconds=400))
    refused = after(Ended("failed", error=AuthFailed("revoked"), failures=1), rand=0.0)
    assert (refused.reason, refused.next_run) == (
        "reauth", NOW + dt.timedelta(seconds=REAUTH_RETRY[0]))
    gone = after(Ended("failed", error=CalendarNotFound("gone"), failures=1))
    assert gone.reason == "gone" and gone.next_run == NOW + dt.timedelta(hours=1)


ENDINGS = st.one_of(
    st.builds(Ended, st.sampled_from(["synced", "lease_held", "error"])),
    st.builds(lambda s: Ended("just_synced", stored_due=NOW + dt.timedelta(seconds=s)),
              st.integers(0, 10_000)),
    st.builds(lambda n, k: Ended("failed", error=k("boom"), failures=n), st.integers(1, 50),
              st.sampled_from([TransientGoogleError, AuthFailed, CalendarNotFound, RateLimited])),
)


@settings(max_examples=300, deadline=None)
@given(ending=ENDINGS, interval=st.floats(1, 86_400), took=st.floats(0, 100_000),
       rand=st.floats(0, 1))
def test_after_any_look_the_next_run_is_never_in_the_past(
        ending: Ended, interval: float, took: float, rand: float) -> None:
    started = NOW - dt.timedelta(seconds=took)
    decision = after(ending, interval=interval, started=started, rand=rand)
    assert not decision.sync
    assert decision.next_run is not None and decision.next_run >= NOW
    # A successful pass keeps start-to-start: never later than one interval after the start.
    if ending.kind == "synced":
        assert decision.next_run == max(NOW, started + dt.timedelta(seconds=interval))
    assert decision.hold == (ending.kind == "failed")


# -- the interval's one owner ------------------------------------------------------------------

def test_the_interval_is_the_calendars_own_else_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CALENDAR_EMULATOR_HOST", "127.0.0.1:9")  # no credentials needed
    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path}/m.db", sync={
        "interval": 300}))
    assert interval_of(row(interval=45), config) == 45.0
    assert interval_of(row(), config) == 300.0
    assert isinstance(interval_of(row(), config), float)


# -- the calendar-set diff -----------------------------------------------------------------------

def test_the_calendar_set_diff_adds_removes_and_modifies() -> None:
    a, b, c = (Entry(1, "a@x", "ops", 60), Entry(2, "b@x", "ops", 60), Entry(3, "c@x", "ops", 60))
    known = {e.pk: e for e in (a, b, c)}
    moved = dataclasses.replace(b, account="other")
    faster = dataclasses.replace(c, interval=30)
    d = Entry(4, "d@x", "ops", 60)
    change = diff(known, [moved, faster, d])
    assert change.added == (moved, d)
    assert change.removed == (a, b)  # b is removed and added again: its job id names the account
    assert change.gone == frozenset({1})
    assert change.modified == (faster,)
    assert diff(known, [a, b, c]) == SetDiff()


def test_an_unresolved_calendar_set_is_said_once_and_retried_with_backoff(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    resolution = Resolution(clock=lambda: clock[0])
    caplog.set_level(logging.DEBUG, logger="reconciler.daemon")
    failure = ["account ops: Google unreachable: connection refused"]
    delays = []
    for _ in range(8):
        delays.append(resolution.note(failure, 300, 0))
        clock[0] += 10
    assert delays == [2, 4, 8, 16, 32, 64, 128, 256]
    assert resolution.unresolved == failure[0] and not resolution.resolved
    assert resolution.note([], 300, 5) is None and resolution.resolved
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == 1 and "calendar set not resolved" in warnings[0].getMessage()
    assert "retrying in 2s" in warnings[0].getMessage() and failure[0] in warnings[0].getMessage()
    assert len(infos) == 1 and "resolved after 9 attempts" in infos[0].getMessage()
    assert "5 calendar(s)" in infos[0].getMessage()
    assert resolve_retry_delay(100, 300) == 300


# -- /healthz readiness ------------------------------------------------------------------------

def test_healthz_is_starting_until_resolved_and_a_first_pass() -> None:
    base = {"tick_age": 0.1, "stopping": False}
    ok, body = readiness(calendars=0, unresolved=None, resolved=False, passed=False, **base)
    assert not ok and body["status"] == "starting"
    assert body["reason"] == "calendar set not resolved: first attempt in progress"
    ok, body = readiness(calendars=0, unresolved="account ops: connection refused",
                         resolved=False, passed=False, **base)
    assert not ok and body == {"status": "starting", "calendars": 0, "reason":
                               "calendar set not resolved: account ops: connection refused"}
    ok, body = readiness(calendars=3, unresolved=None, resolved=True, passed=False, **base)
    assert not ok and body["reason"] == "no pass has succeeded yet"
    assert readiness(calendars=3, unresolved=None, resolved=True, passed=True, **base) == (
        True, {"calendars": 3})
    assert readiness(calendars=0, unresolved=None, resolved=True, passed=False, **base)[0]
    assert readiness(calendars=3, unresolved=None, resolved=True, passed=True, tick_age=11,
                     stopping=False)[1]["problem"] == "main loop stalled"


# -- one line per cause --------------------------------------------------------------------------

def test_a_lost_database_is_one_warning_a_reminder_a_minute_and_one_info(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    log = logging.getLogger("test.causes")
    causes = Causes(log, clock=lambda: clock[0])
    caplog.set_level(logging.DEBUG, logger="test.causes")
    lost = DatabaseUnavailable("database connection lost; will retry")
    for second in range(150):  # 50 calendars, each reporting every 2 s, for 150 s
        clock[0] = float(second)
        for n in range(25):
            causes.database_lost(lost, f"cal{(second % 2) * 25 + n}")
    assert causes.database_down
    causes.database_ok()
    causes.database_ok()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines] == ["WARNING", "WARNING", "WARNING", "INFO"]
    assert lines[0][1].startswith("database unreachable: database connection lost")
    assert "still unreachable after 60s" in lines[1][1] and "50 calendar(s) wait" in lines[1][1]
    assert "after 120s" in lines[2][1]
    assert lines[3][1] == "database reachable again after 149s; 50 calendar(s) resume"
    assert not causes.database_down


def test_a_refused_account_is_one_line_until_it_works_again(
        caplog: pytest.LogCaptureFixture) -> None:
    causes = Causes(logging.getLogger("test.causes"))
    caplog.set_level(logging.DEBUG, logger="test.causes")
    assert [causes.account_refused("alice") for _ in range(5)] == [True] + [False] * 4
    assert causes.account_refused("bob")
    causes.account_ok("carol")  # never refused: nothing to say
    causes.account_ok("alice")
    assert causes.account_refused("alice")  # refused again later: a new line
    assert [r.getMessage() for r in caplog.records] == [
        "account alice: credentials accepted again"]


# -- service generations across reloads ------------------------------------------------------

class FakeService:
    """Stands in for a Service: an owner id, a stop flag, a close that is counted."""

    made = 0

    def __init__(self, config: object) -> None:
        FakeService.made += 1
        self.config = config
        self.owner = f"owner{FakeService.made}"
        self.closed = 0
        self.stopping = threading.Event()

    def close(self) -> None:
        self.closed += 1


def test_a_replaced_generation_closes_when_its_last_pass_returns_it() -> None:
    gens = Generations("config-1", FakeService)  # type: ignore[arg-type]
    first = gens.current
    with gens.borrow() as svc:
        assert svc is first
        second = gens.replace("config-2")  # type: ignore[arg-type]
        assert gens.current is second and gens.config == "config-2"
        assert gens.owners() == [first.owner, second.owner]  # its leases are still ours
        assert first.closed == 0  # a pass still uses it
    assert first.closed == 1 and gens.owners() == [second.owner]
    third = gens.replace("config-3")  # type: ignore[arg-type]
    assert second.closed == 1 and gens.owners() == [third.owner]  # unused: closed at once
    gens.pin(third)  # the watch runtime's service stays open until shutdown
    fourth = gens.replace("config-4")  # type: ignore[arg-type]
    assert third.closed == 0 and gens.owners() == [third.owner, fourth.owner]
    gens.stop_passes()
    assert third.stopping.is_set() and fourth.stopping.is_set()
    gens.close_all(clean=True)
    assert third.closed == fourth.closed == 1

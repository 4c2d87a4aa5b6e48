"""Pure scheduling policies: backoff, Retry-After, quota windows, due times, first-pass spread.

Time is injected (a fake monotonic clock for the quota windows) or frozen with
freezegun (the planner reads the stored row and ``utcnow``).
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.clock import utcnow
from reconciler.config import QuotaConfig
from reconciler.daemon.backoff import QUOTA_PAUSE, backoff_step, failure_delay
from reconciler.daemon.planning import (
    audit_due,
    first_run_offset,
    next_after_pass,
    plan,
)
from reconciler.daemon.quota import QuotaBudget, TokenBucket
from reconciler.errors import (
    AuthFailed,
    CalendarNotFound,
    QuotaExhausted,
    RateLimited,
    SyncStopped,
    TransientGoogleError,
)
from reconciler.store.models import Account, Calendar

NOW = dt.datetime(2025, 3, 1, 12, 0, 0)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- backoff ----------------------------------------------------------------------------------

def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    steps = [backoff_step(n, interval=300, backoff_max=600) for n in range(1, 8)]
    assert steps == [30, 60, 120, 240, 480, 600, 600]
    assert backoff_step(1, interval=2, backoff_max=600) == 2  # short intervals: base = interval
    assert backoff_step(100, interval=300, backoff_max=3600) == 3600


def test_backoff_jitter_stays_between_half_and_full_step() -> None:
    err = TransientGoogleError("boom", status=503)
    rng = random.Random(7)
    for failures in range(1, 10):
        step = backoff_step(failures, 300, 3600)
        for _ in range(50):
            delay = failure_delay(err, failures, 300, 3600, rng.random)
            assert step / 2 <= delay.seconds <= step and delay.reason == "backoff"


def test_retry_after_is_a_floor_and_quota_pauses_longer() -> None:
    limited = RateLimited("slow down", status=429, retry_after=45)
    assert failure_delay(limited, 1, 300, 3600, lambda: 0.0).seconds == 45
    assert failure_delay(limited, 1, 300, 3600, lambda: 0.0).reason == "retry_after"
    # A Retry-After shorter than the backoff does not shorten it.
    assert failure_delay(RateLimited("x", retry_after=1), 5, 300, 3600, lambda: 1.0).seconds == 480
    quota = failure_delay(QuotaExhausted("quota", status=403), 1, 300, 3600, lambda: 0.0)
    assert quota.reason == "quota" and quota.seconds >= QUOTA_PAUSE
    assert failure_delay(QuotaExhausted("q"), 1, 300, 120, lambda: 0.0).seconds == 120  # capped


def test_auth_failure_parks_for_15_to_30_minutes_and_404_polls_rarely() -> None:
    low = failure_delay(AuthFailed("revoked"), 1, 60, 3600, lambda: 0.0)
    high = failure_delay(AuthFailed("revoked"), 9, 60, 3600, lambda: 0.999)
    assert low.reason == "reauth" and 900 <= low.seconds <= high.seconds <= 1800
    gone = failure_delay(CalendarNotFound("gone"), 3, 60, 3600, lambda: 0.5)
    assert gone.reason == "gone" and gone.seconds >= 3600


# -- quota ------------------------------------------------------------------------------------

def test_bucket_lets_a_burst_through_then_paces_to_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=3, clock=clock)  # 1 a second, 3 held
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == pytest.approx(1.0)  # the next token
    assert bucket.reserve() == pytest.approx(2.0)  # reservations queue up in order
    assert bucket.available == pytest.approx(-2)  # two owed to waiting callers
    clock.t += 200
    assert bucket.available == pytest.approx(3)  # never more than the burst


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=80),
       st.integers(min_value=1, max_value=600), st.floats(min_value=0.1, max_value=60))
def test_no_span_ever_holds_more_than_the_burst_plus_the_rate(gaps: list[float], quota: int,
                                                              burst: float) -> None:
    clock = FakeClock()
    bucket = TokenBucket(quota, burst=burst, clock=clock)
    sent = []
    for gap in gaps:
        clock.t += gap
        sent.append(clock.t + bucket.reserve())
    for i, start in enumerate(sent):
        for end in sent[i:]:
            held = sum(start <= t <= end for t in sent)
            assert held <= bucket.capacity + (end - start) * quota / 60 + 1e-6


def test_a_minute_of_budget_cannot_leave_in_two_seconds() -> None:
    clock = FakeClock()
    bucket = TokenBucket(600, burst=10, clock=clock)  # 10 a second, 100 held
    sent = [bucket.reserve() for _ in range(1800)]  # seconds from now
    assert sum(t < 2.05 for t in sent) == 100 + 20  # the burst and two seconds' worth
    assert sent[-1] == pytest.approx((1800 - 100) / 10)  # then exactly the rate


def test_budget_applies_the_user_and_project_buckets() -> None:
    clock = FakeClock()
    budget = QuotaBudget(QuotaConfig(requests_per_minute=120, per_user_requests_per_minute=60,
                                     burst=10), threading.Event(), clock=clock)
    assert budget.user("a").capacity == 10 and budget.project.capacity == 20
    assert [budget.wait_time("a") for _ in range(10)] == [0.0] * 10
    assert budget.wait_time("a") == pytest.approx(1.0)  # a's burst is spent: 1 a second
    assert [budget.wait_time("b") for _ in range(9)] == [0.0] * 9  # project has 20 - 11 left
    assert budget.wait_time("b") == pytest.approx(0.5)  # now the project is the limit (2/s)


def test_accounts_of_different_projects_have_their_own_project_bucket() -> None:
    clock = FakeClock()
    budget = QuotaBudget(QuotaConfig(requests_per_minute=60, per_user_requests_per_minute=600,
                                     burst=2), threading.Event(), clock=clock,
                         project_of=lambda account: account.split("-")[0])
    assert [budget.wait_time("p1-a"), budget.wait_time("p1-b")] == [0.0, 0.0]
    assert budget.wait_time("p1-c") == pytest.approx(1.0)  # p1's two tokens are spent
    assert budget.wait_time("p2-a") == 0.0  # another project, another bucket


def test_budget_wait_ends_at_a_stop_request() -> None:
    stop = threading.Event()
    budget = QuotaBudget(QuotaConfig(requests_per_minute=1, per_user_requests_per_minute=1), stop)
    budget.before_request("a", "events.list")  # the burst token
    threading.Timer(0.2, stop.set).start()
    started = dt.datetime.now()
    with pytest.raises(SyncStopped):
        budget.before_request("a", "events.list")  # would wait 60 s
    assert (dt.datetime.now() - started).total_seconds() < 5


# -- due times ----------------------------------------------------------------------------------

def cal(**fields: object) -> Calendar:
    values: dict[str, object] = {"calendar_id": "c@x", "account": "ops", "consecutive_failures": 0,
                                 "removed": False}
    values.update(fields)
    return Calendar(**values)


def test_first_pass_offsets_spread_over_at_most_ten_percent() -> None:
    rng = random.Random(1)
    offsets = [first_run_offset(300, 0.1, rng.random) for _ in range(1000)]
    assert 0 <= min(offsets) < 3 and 27 < max(offsets) <= 30
    assert max(first_run_offset(300, 1.0, rng.random) for _ in range(200)) <= 30  # capped
    assert first_run_offset(300, 0.0, rng.random) == 0


@freeze_time(NOW)
def test_interval_is_start_to_start() -> None:
    started = utcnow() - dt.timedelta(seconds=7)
    assert next_after_pass(started, 60, utcnow()) == NOW + dt.timedelta(seconds=53)
    assert next_after_pass(started, 5, utcnow()) == NOW  # a pass longer than the interval


@freeze_time(NOW)
def test_plan_follows_the_stored_due_time() -> None:
    started = NOW - dt.timedelta(hours=1)
    later = NOW + dt.timedelta(seconds=30)
    assert plan(cal(), None, utcnow(), first=True, process_started=started).reason == "first"
    not_due = plan(cal(next_due=later), None, utcnow(), first=False, process_started=started)
    assert (not_due.sync, not_due.reason, not_due.wait_until) == (False, "not_due", later)
    due = plan(cal(next_due=NOW), None, utcnow(), first=False, process_started=started)
    assert due.sync and due.reason == "due"
    asked = plan(cal(next_due=later, sync_requested_at=NOW), None, utcnow(), first=False,
                 process_started=started)
    assert asked.sync and asked.reason == "requested"
    backoff = plan(cal(next_due=later, consecutive_failures=2, sync_requested_at=NOW), None,
                   utcnow(), first=False, process_started=started)
    assert (backoff.sync, backoff.reason) == (False, "backoff")  # requests wait for the backoff
    # First pass of this process, but another process attempted it after we started.
    other = plan(cal(next_due=later, last_attempt=NOW), None, utcnow(), first=True,
                 process_started=started)
    assert other.reason == "not_due"


@freeze_time(NOW)
def test_plan_parks_accounts_that_need_reauthorisation() -> None:
    parked = Account(name="ops", state="needs_reauth",
                     next_auth_retry=NOW + dt.timedelta(minutes=20))
    decision = plan(cal(), parked, utcnow(), first=True, process_started=NOW)
    assert (decision.sync, decision.reason) == (False, "needs_reauth")
    assert decision.wait_until == NOW + dt.timedelta(minutes=20)
    with freeze_time(NOW + dt.timedelta(minutes=21)):
        probe = plan(cal(), parked, utcnow(), first=False, process_started=NOW)
        assert probe.sync and probe.probe


@freeze_time(NOW)
def test_audits_are_due_after_the_interval_and_spread_out() -> None:
    week = 7 * 86400
    fresh = cal(last_full_sync=NOW - dt.timedelta(days=1), last_success=NOW)
    old = cal(last_full_sync=NOW - dt.timedelta(days=8), last_success=NOW)
    assert not audit_due(fresh, utcnow(), week)
    assert audit_due(old, utcnow(), week)
    assert not audit_due(old, utcnow(), 0)  # 0 disables audits
    # Calendars fully synced at the same moment come due on different days.
    due_after = []
    for i in range(200):
        for day in range(3, 8):
            row = cal(calendar_id=f"c{i}@x", last_full_sync=NOW - dt.timedelta(days=day),
                      last_success=NOW)
            if audit_due(row, utcnow(), week):
                due_after.append(day)
                break
    assert set(due_after) >= {4, 5, 6, 7}
    decision = plan(old, None, utcnow(), first=False, process_started=NOW, audit_interval=week)
    assert decision.sync and decision.audit

"""The fleet as ``status`` and ``/metrics`` see it: one read of every calendar, one lag rule.

Why: ``status`` and the Prometheus collector each read the calendar table and
each computed lag; two rules drift. Here :func:`lag_seconds` is the one rule
(time since the last successful pass minus the interval, 0 while on schedule;
``None`` before the first success) and the readers return records, so neither
caller touches a model. Every function maps database errors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.store.calendars import account_state
from reconciler.store.channels import OPEN, channel_record
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Account, AccountCalendar, Calendar, Channel, Event, fn
from reconciler.store.records import AccountState, ChannelRow


def lag_seconds(last_success: dt.datetime | None, interval: float,
                now: dt.datetime) -> float | None:
    """How far a calendar is behind its interval (0 on schedule), None when never synced."""
    if last_success is None:
        return None
    return max(0.0, (now - last_success).total_seconds() - interval)


@dataclass(frozen=True, slots=True)
class CalendarStatus:
    """A calendar row as ``status`` shows it (same names as the table's columns)."""

    id: int
    calendar_id: str
    account: str
    summary: str | None
    removed: bool
    gone: bool
    interval: int | None
    last_success: dt.datetime | None
    last_error: str | None
    consecutive_failures: int
    token_updated_at: dt.datetime | None
    next_due: dt.datetime | None
    lease_owner: str | None
    lease_expires: dt.datetime | None
    lease_since: dt.datetime | None
    planned_interval: float | None = None  # the adaptive schedule's plan (migration 0009)
    change_rate: float | None = None  # estimated changes per second
    rate_weight: float | None = None  # seconds of observation behind it (None: never measured)


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Everything ``status`` reads, in one store call."""

    calendars: list[CalendarStatus]
    live_events: dict[int, int]  # calendar pk -> events not cancelled
    accounts: dict[str, AccountState]
    listed_names: dict[tuple[str, str], str]  # (account, calendar id) -> calendarList summary
    channels: dict[int, ChannelRow]  # calendar pk -> its open channel, else its latest


@dataclass(frozen=True, slots=True)
class CalendarLag:
    """One live calendar for ``/metrics``: its lag, who holds its lease, whether it fails."""

    calendar_id: str
    account: str
    lag_s: float | None
    lease_owner: str | None
    failing: bool
    interval_s: float = 0.0  # the calendar's own interval (adaptive: its plan)
    changes_per_hour: float = 0.0  # the adaptive schedule's estimate


def _status(cal: Calendar) -> CalendarStatus:
    return CalendarStatus(
        id=int(cal.id), calendar_id=str(cal.calendar_id), account=str(cal.account),
        summary=cal.summary, removed=bool(cal.removed), gone=bool(cal.gone),
        interval=cal.interval, last_success=cal.last_success, last_error=cal.last_error,
        consecutive_failures=int(cal.consecutive_failures or 0),
        token_updated_at=cal.token_updated_at, next_due=cal.next_due,
        lease_owner=cal.lease_owner, lease_expires=cal.lease_expires, lease_since=cal.lease_since,
        planned_interval=cal.planned_interval, change_rate=cal.change_rate,
        rate_weight=cal.rate_weight)


@map_db_errors()
def snapshot() -> FleetSnapshot:
    """Every calendar (by account, id) and what ``status`` shows beside it."""
    counts = dict(Event.select(Event.calendar, fn.COUNT(Event.id))
                  .where(Event.status != "cancelled").group_by(Event.calendar).tuples())
    accounts = {a.name: account_state(a) for a in Account.select()}
    listed = {(r.account, r.calendar_id): r.summary for r in
              AccountCalendar.select(AccountCalendar.account, AccountCalendar.calendar_id,
                                     AccountCalendar.summary)
              .where(AccountCalendar.summary.is_null(False))}
    channels: dict[int, ChannelRow] = {}
    for row in Channel.select().order_by(Channel.id):  # an open channel wins, else the latest
        channel = channel_record(row)
        current = channels.get(channel.calendar_id)
        if current is None or current.state != OPEN or channel.state == OPEN:
            channels[channel.calendar_id] = channel
    calendars = [_status(c) for c in
                 Calendar.select().order_by(Calendar.account, Calendar.calendar_id)]
    return FleetSnapshot(calendars, {int(k): int(v) for k, v in counts.items()}, accounts,
                         listed, channels)


@map_db_errors()
def problem_accounts() -> list[AccountState]:
    """Accounts whose state is not ``ok`` (credentials rejected), by name."""
    return [account_state(a) for a in
            Account.select().where(Account.state != "ok").order_by(Account.name)]


@map_db_errors()
def calendar_lags(interval: Callable[[Any], float], now: dt.datetime) -> list[CalendarLag]:
    """Every live (not removed) calendar's lag, lease holder and failing flag; ``interval``
    gives a row's interval (``run`` passes :func:`reconciler.intervals.interval_of`)."""
    rows = Calendar.select(Calendar.calendar_id, Calendar.account, Calendar.last_success,
                           Calendar.interval, Calendar.lease_owner,
                           Calendar.consecutive_failures, Calendar.planned_interval,
                           Calendar.change_rate).where(~Calendar.removed)
    lags = []
    for r in rows:
        seconds = interval(r)
        lags.append(CalendarLag(str(r.calendar_id), str(r.account),
                                lag_seconds(r.last_success, seconds, now),
                                r.lease_owner, bool(r.consecutive_failures), seconds,
                                (r.change_rate or 0.0) * 3600))
    return lags


@map_db_errors()
def newest_success() -> tuple[dt.datetime | None, float | None]:
    """(newest ``last_success``, longest interval) of the live calendars: ``/healthz``'s probe.

    A calendar's interval is its plan where the adaptive schedule stored one
    (``run`` under ``fixed`` clears every plan at start), else its own: the
    same interval :func:`reconciler.intervals.interval_of` gives, so a fleet
    whose calendars all sit at ``max_interval`` is not judged stale by the
    shorter configured interval.
    """
    row = (Calendar.select(fn.MAX(Calendar.last_success),
                           fn.MAX(fn.COALESCE(Calendar.planned_interval, Calendar.interval)))
           .where(~Calendar.removed).tuples().first())
    newest, longest = row if row is not None else (None, None)
    if isinstance(newest, str):  # SQLite without type conversion
        newest = dt.datetime.fromisoformat(newest)
    return newest, float(longest) if longest else None


__all__ = ["CalendarLag", "CalendarStatus", "FleetSnapshot", "calendar_lags",
           "lag_seconds", "newest_success", "problem_accounts", "snapshot"]

"""``reconciler status``: how a fleet of calendars is doing, for people, scripts and monitoring.

Why: with dozens of calendars an operator needs the answer first ("are they all
fine, and since when?"), then the problems, then the rest; a monitoring system
needs an exit status and one line.

Layout: :func:`calendar_status` and :func:`account_problems` are the only
functions that read the store; everything else (summary, ordering, filters, the
``--check`` verdict, JSON conversion, the width-fitted table) is a pure function
of those rows and ``now``.

Invariants:
- lag is how far a calendar is behind its interval: time since the last
  successful pass minus the interval (0 while on schedule); a calendar is
  *stale* when its lag exceeds the allowed lag (by default its interval);
- problems first: failing states, then stale and never-synced calendars, then
  the healthy ones, then removed ones; ties by account and calendar id;
- every time in JSON is ISO 8601 UTC with ``Z``;
- a sync is *in flight* while its lease is held (owner set, not expired);
  ``lease_since`` is when that lease was taken (renewals do not move it);
- an account that needs re-authorisation is reported even when none of its
  calendars has a row yet.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Account, AccountCalendar, Calendar, Channel, Event, fn

FAILING_STATES = ("needs_reauth", "failing", "gone")
STATES = ("ok", "never_synced", "failing", "needs_reauth", "gone", "removed", "stale")
CHECK_OK, CHECK_WARNING, CHECK_CRITICAL = 0, 1, 2

Row = dict[str, Any]


def _age(then: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


@map_db_errors()
def calendar_status(config: Config, now: dt.datetime | None = None) -> list[Row]:
    """One dict per mirrored calendar (removed ones included, marked), ordered by account, id."""
    now = now or utcnow()
    counts = dict(Event.select(Event.calendar, fn.COUNT(Event.id))
                  .where(Event.status != "cancelled").group_by(Event.calendar).tuples())
    accounts = {a.name: a for a in Account.select()}
    listed = {(r.account, r.calendar_id): r.summary for r in
              AccountCalendar.select(AccountCalendar.account, AccountCalendar.calendar_id,
                                     AccountCalendar.summary)
              .where(AccountCalendar.summary.is_null(False))}
    channels: dict[int, Channel] = {}
    for channel in Channel.select().order_by(Channel.id):  # an open channel wins, else the latest
        current = channels.get(channel.calendar_id)
        if current is None or current.state != "open" or channel.state == "open":
            channels[channel.calendar_id] = channel
    rows = []
    for cal in Calendar.select().order_by(Calendar.account, Calendar.calendar_id):
        interval = cal.interval or config.sync.interval
        since_success = _age(cal.last_success, now)
        account = accounts.get(cal.account)
        if cal.removed:
            state = "removed"
        elif account is not None and account.state == "needs_reauth":
            state = "needs_reauth"
        elif cal.gone:
            state = "gone"
        elif cal.consecutive_failures:
            state = "failing"
        elif cal.last_success is None:
            state = "never_synced"
        else:
            state = "ok"
        channel = channels.get(cal.id)
        rows.append({
            "calendar": cal.calendar_id,
            "name": cal.summary or listed.get((cal.account, cal.calendar_id)),
            "account": cal.account,
            "state": state,
            "events": counts.get(cal.id, 0),
            "last_success": cal.last_success,
            "last_success_age_s": since_success,
            "last_error": cal.last_error,
            "consecutive_failures": cal.consecutive_failures,
            "token_age_s": _age(cal.token_updated_at, now),
            "interval_s": interval,
            "lag_s": None if since_success is None else max(0.0, since_success - interval),
            "next_due": cal.next_due,
            "lease_owner": cal.lease_owner,
            "syncing": bool(cal.lease_owner and cal.lease_expires and cal.lease_expires > now),
            "lease_since": cal.lease_since if cal.lease_owner else None,
            "lease_age_s": (max(0.0, _age(cal.lease_since, now) or 0.0)
                            if cal.lease_owner and cal.lease_since else None),
            "channel": channel.state if channel else None,
            "channel_expires": channel.expiration if channel and channel.state == "open" else None,
            "channel_retry": channel.retry_after if channel and channel.state == "failed" else None,
        })
    return rows


@map_db_errors()
def account_problems() -> list[Row]:
    """Accounts whose credentials were rejected: ``{"account", "state", "last_error"}``."""
    return [{"account": a.name, "state": a.state, "last_error": a.last_error}
            for a in Account.select().where(Account.state != "ok").order_by(Account.name)]


# -- pure functions of the rows ---------------------------------------------------------------

def is_failing(row: Mapping[str, Any]) -> bool:
    """The calendar cannot be synced now (its own failures, or its account's)."""
    return row["state"] in FAILING_STATES


def is_stale(row: Mapping[str, Any], max_lag: float | None = None) -> bool:
    """Not removed, not failing, and behind: never synced, or lag above ``max_lag``
    (default: the calendar's own interval)."""
    if row["state"] in (*FAILING_STATES, "removed"):
        return False
    if row["state"] == "never_synced":
        return True
    allowed = row["interval_s"] if max_lag is None else max_lag
    return row["lag_s"] is not None and row["lag_s"] > allowed


def _rank(row: Mapping[str, Any]) -> int:
    if is_failing(row):
        return 0
    if is_stale(row):
        return 1
    return 3 if row["state"] == "removed" else 2


def order_rows(rows: Iterable[Row]) -> list[Row]:
    """Failing calendars first, then stale ones, then healthy, then removed."""
    return sorted(rows, key=lambda r: (_rank(r), r["account"], r["calendar"]))


def filter_rows(rows: Iterable[Row], *, accounts: Iterable[str] = (), states: Iterable[str] = (),
                failing: bool = False, calendars: Iterable[str] = ()) -> list[Row]:
    """Rows of the given accounts / states / calendars (all when empty); ``failing``: problems only.

    The state ``stale`` selects stale calendars whatever their stored state.
    """
    accounts, states, calendars = set(accounts), set(states), set(calendars)
    out = []
    for row in rows:
        if accounts and row["account"] not in accounts:
            continue
        if calendars and row["calendar"] not in calendars:
            continue
        if states and row["state"] not in states and not ("stale" in states and is_stale(row)):
            continue
        if failing and not (is_failing(row) or is_stale(row)):
            continue
        out.append(row)
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@dataclass(frozen=True)
class Summary:
    """The fleet at a glance."""

    total: int
    by_state: dict[str, int]
    stale: int
    syncing: int
    oldest_success_age_s: float | None
    failing_accounts: list[Row]

    def line(self) -> str:
        """``61 calendars: 58 ok, 2 failing, 1 stale; oldest successful sync 42 s ago; ...``."""
        if not self.total and not self.failing_accounts:
            return "no calendars in the mirror yet (run `reconciler once`)"
        parts = [f"{n} {state.replace('_', ' ')}" for state, n in
                 sorted(self.by_state.items(), key=lambda kv: STATES.index(kv[0]))]
        text = f"{self.total} calendar{'s' if self.total != 1 else ''}: {', '.join(parts) or 'none'}"
        if self.stale:
            text += f" ({self.stale} stale)"
        if self.syncing:
            text += f"; {self.syncing} syncing now"
        if self.oldest_success_age_s is not None:
            text += f"; oldest successful sync {_duration(self.oldest_success_age_s)} ago"
        if self.failing_accounts:
            names = ", ".join(f"{a['account']} ({a['state'].replace('_', ' ')})"
                              for a in self.failing_accounts)
            text += f"; failing accounts: {names}"
        return text


def summarize(rows: list[Row], accounts: list[Row], max_lag: float | None = None) -> Summary:
    """Counts by state, stale and in-flight calendars, the oldest success, failing accounts."""
    live = [r for r in rows if r["state"] != "removed"]
    ages = [r["last_success_age_s"] for r in live if r["last_success_age_s"] is not None]
    return Summary(
        total=len(live),
        by_state=dict(Counter(r["state"] for r in live)),
        stale=sum(1 for r in live if is_stale(r, max_lag) and r["state"] != "never_synced"),
        syncing=sum(1 for r in live if r.get("syncing")),
        oldest_success_age_s=max(ages) if ages else None,
        failing_accounts=list(accounts),
    )


def evaluate_check(rows: list[Row], accounts: list[Row],
                   max_lag: float | None = None) -> tuple[int, str]:
    """The ``status --check`` verdict: (exit status, one line), like a monitoring plugin.

    0 ``OK`` when every calendar synced within its allowed lag; 1 ``WARNING`` when
    a calendar or account is failing, a calendar lags, or none has synced yet.
    (2 ``CRITICAL``, the mirror unreadable, is decided where the store is opened.)
    """
    live = [r for r in rows if r["state"] != "removed"]
    summary = summarize(rows, accounts, max_lag)
    failing = [r for r in live if is_failing(r)]
    stale = [r for r in live if is_stale(r, max_lag)]
    problems = []
    if accounts:
        problems.append(f"{len(accounts)} account{'s' if len(accounts) != 1 else ''} "
                        f"failing ({', '.join(a['account'] for a in accounts)})")
    if failing:
        problems.append(f"{len(failing)} of {len(live)} calendars failing "
                        f"({_first_few(r['calendar'] for r in failing)})")
    lagging = [r for r in stale if r["state"] != "never_synced"]
    if lagging:
        worst = max(r["lag_s"] for r in lagging)
        problems.append(f"{len(lagging)} lagging (worst {_duration(worst)} behind: "
                        f"{_first_few(r['calendar'] for r in lagging)})")
    never = [r for r in stale if r["state"] == "never_synced"]
    if never:
        problems.append(f"{len(never)} never synced ({_first_few(r['calendar'] for r in never)})")
    if not live and not problems:
        problems.append("no calendars in the mirror")
    if problems:
        return CHECK_WARNING, "WARNING: " + "; ".join(problems)
    oldest = _duration(summary.oldest_success_age_s)
    return CHECK_OK, f"OK: {len(live)} calendar{'s' if len(live) != 1 else ''} synced, oldest {oldest} ago"


def in_flight(rows: Iterable[Row]) -> list[str]:
    """One line per sync in flight (a lease held now): who holds it and since when.

    ``team@example.com (account ops): syncing for 42 s, since 2025-01-01 12:00:00Z, by host:123:ab``
    """
    lines = []
    for row in sorted((r for r in rows if r.get("syncing")),
                      key=lambda r: (-(r.get("lease_age_s") or 0.0), r["calendar"])):
        since = row.get("lease_since")
        when = (f"syncing for {_duration(row.get('lease_age_s'))}, since {_cell(since)}"
                if since is not None else "syncing")
        lines.append(f"{row['calendar']} (account {row['account']}): {when}, "
                     f"by {row['lease_owner']}")
    return lines


def _first_few(items: Iterable[str], n: int = 3) -> str:
    items = list(items)
    more = f", +{len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def iso_z(value: dt.datetime | None) -> str | None:
    """ISO 8601 UTC with ``Z`` (naive datetimes are UTC, as the store keeps them)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def to_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with every datetime as ISO 8601 UTC ``Z``."""
    return {k: iso_z(v) if isinstance(v, dt.datetime) else v for k, v in row.items()}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


# Columns in the order shown, with the width each needs at least; when the
# terminal is narrower than the sum, the least important (highest rank) go first.
# LAST ERROR is the one column that says why a calendar fails: it goes last, after
# LAST SUCCESS (at 80 columns: CALENDAR, STATE, LAST SUCCESS or LAG, LAST ERROR).
_COLUMNS = (  # (header, minimum width, drop rank: 0 never dropped)
    ("NAME", 10, 4), ("CALENDAR", 16, 0), ("ACCOUNT", 7, 5), ("STATE", 12, 0), ("EVENTS", 6, 6),
    ("LAST SUCCESS", 12, 2), ("FAILS", 5, 7), ("LAG", 6, 3), ("CHANNEL", 7, 8),
    ("LAST ERROR", 10, 1),
)


def fit_columns(width: int, named: bool, calendar_width: int = 16) -> list[str]:
    """The headers to show in ``width`` columns: all that fit, dropping the least important.

    ``calendar_width`` is what the ids need (capped by the caller): an id cut in
    two is harder to copy than a missing column.
    """
    need = {header: minimum for header, minimum, _rank in _COLUMNS}
    need["CALENDAR"] = max(need["CALENDAR"], calendar_width)
    columns = [c for c in _COLUMNS if named or c[0] != "NAME"]
    gap = 2
    while len(columns) > 2 and sum(need[c[0]] + gap for c in columns) > width:
        columns.remove(max(columns, key=lambda c: c[2]))
    return [c[0] for c in columns]


def _cells(row: Mapping[str, Any]) -> dict[str, str]:
    error = (row["last_error"] or "").splitlines()
    return {
        "NAME": _cell(row.get("name")),
        "CALENDAR": row["calendar"],
        "ACCOUNT": row["account"],
        "STATE": row["state"] + (" *" if row.get("syncing") else ""),
        "EVENTS": _cell(row["events"]),
        "LAST SUCCESS": (f"{_duration(row['last_success_age_s'])} ago"
                         if row["last_success_age_s"] is not None else "never"),
        "FAILS": _cell(row["consecutive_failures"]),
        "LAG": _duration(row["lag_s"]) if row["lag_s"] else "-",
        "CHANNEL": _cell(row["channel"]),
        "LAST ERROR": error[0] if error else "-",
    }


def render_table(rows: list[Row], width: int = 160) -> str:
    """A table for a terminal ``width`` columns wide: columns that do not fit are dropped,
    long ids fold, errors are cut with an ellipsis."""
    if not rows:
        return "no calendars match"
    named = any(r.get("name") and r["name"] != r["calendar"] for r in rows)
    id_width = min(max(len(r["calendar"]) for r in rows), max(16, width // 2))
    headers = fit_columns(width, named, id_width)
    minimum = {c[0]: c[1] for c in _COLUMNS} | {"CALENDAR": id_width}
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    cells = [_cells(row) for row in rows]
    natural = {h: max([len(h)] + [len(c[h]) for c in cells]) for h in headers}
    # The error takes what the other columns leave, so it never squeezes the ids out.
    error_width = max(minimum["LAST ERROR"],
                      width - sum(natural[h] + 4 for h in headers if h != "LAST ERROR"))
    for header in headers:
        wraps = header in ("NAME", "CALENDAR", "ACCOUNT")
        table.add_column(header, min_width=minimum[header], no_wrap=not wraps,
                         max_width=error_width if header == "LAST ERROR" else None,
                         overflow="fold" if wraps else "ellipsis",
                         justify="right" if header in ("EVENTS", "FAILS", "LAG") else "left")
    for cell in cells:
        table.add_row(*(cell[h] for h in headers))
    out = io.StringIO()
    Console(file=out, width=width, no_color=True, highlight=False, force_terminal=False,
            color_system=None).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines() if line.strip())

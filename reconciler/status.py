"""``reconciler status``: how every calendar is doing, for people and for scripts.

Lag is how far a calendar is behind its interval: time since the last
successful pass minus the interval (0 while on schedule).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.store.models import Account, Calendar, Channel, Event


def _age(then: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def calendar_status(config: Config) -> list[dict[str, Any]]:
    """One dict per mirrored calendar (removed ones included, marked)."""
    now = utcnow()
    counts = dict(Event.select(Event.calendar, peewee.fn.COUNT(Event.id))
                  .where(Event.status != "cancelled").group_by(Event.calendar).tuples())
    accounts = {a.name: a for a in Account.select()}
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
            "account": cal.account,
            "state": state,
            "events": counts.get(cal.id, 0),
            "last_success": cal.last_success,
            "last_error": cal.last_error,
            "consecutive_failures": cal.consecutive_failures,
            "token_age_s": _age(cal.token_updated_at, now),
            "interval_s": interval,
            "lag_s": None if since_success is None else max(0.0, since_success - interval),
            "next_due": cal.next_due,
            "lease_owner": cal.lease_owner,
            "channel": channel.state if channel else None,
            "channel_expires": channel.expiration if channel and channel.state == "open" else None,
            "channel_retry": channel.retry_after if channel and channel.state == "failed" else None,
        })
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


def render_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table for a terminal."""
    if not rows:
        return "no calendars in the mirror yet (run `reconciler once`)"
    columns = ["calendar", "account", "state", "events", "last_success", "consecutive_failures",
               "token_age_s", "lag_s", "channel", "channel_expires", "last_error"]
    headers = ["CALENDAR", "ACCOUNT", "STATE", "EVENTS", "LAST SUCCESS", "FAILS", "TOKEN AGE S",
               "LAG S", "CHANNEL", "CHANNEL EXPIRES", "LAST ERROR"]
    table = [headers] + [[_fmt(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns) - 1)]
    out = []
    for line in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])] + [line[-1][:120]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)

"""``reconciler agenda``: every occurrence in a time range, as people and scripts read it.

Read-only like ``export``: it never creates a database. Inside the stored
window it reads the ``occurrence`` table; outside, it expands the stored
series with the same code (:mod:`reconciler.recurrence`). JSON lines follow
the interface contract; text lines are for people, in the local time zone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

import click

from reconciler.cli.context import Context, pass_context
from reconciler.recurrence import Occurrence

DEFAULT_DAYS = 7


def parse_when(value: str) -> dt.datetime:
    """A date (its UTC midnight) or an RFC 3339 date-time, as an aware UTC datetime."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        if "T" not in text.upper() and " " not in text:
            raise ValueError(text)
        parsed = dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a date (2025-03-04) nor an RFC 3339 "
                                 "date-time (2025-03-04T09:00:00Z)") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset (add Z or +HH:MM)")
    return parsed.astimezone(dt.UTC)


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.datetime | None:
    return None if value is None else parse_when(value)


def _moment(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def json_line(calendar_id: str, occ: Occurrence) -> str:
    """The contract's JSON line for one occurrence."""
    return json.dumps({"calendar": calendar_id, "event_id": occ.series_id,
                       "instance_id": occ.instance_id, "start": _moment(occ.start),
                       "end": _moment(occ.end), "all_day": occ.all_day, "status": occ.status,
                       "summary": occ.summary}, ensure_ascii=False)


def text_line(calendar_id: str, occ: Occurrence, zone: Any = None) -> str:
    """One line for people: local day and times, title, calendar."""
    title = " ".join((occ.summary or "(no title)").split())
    if occ.all_day:
        assert isinstance(occ.start, dt.date) and isinstance(occ.end, dt.date)
        last = occ.end - dt.timedelta(days=1) if occ.end > occ.start else occ.start
        span = f"{occ.start:%a %Y-%m-%d} all day" + (f" to {last:%a %Y-%m-%d}"
                                                     if last != occ.start else "")
    else:
        start, end = occ.start_utc.astimezone(zone), occ.end_utc.astimezone(zone)
        until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %Y-%m-%d %H:%M}"
        span = f"{start:%a %Y-%m-%d %H:%M}-{until}"
    flag = " (tentative)" if occ.status == "tentative" else ""
    return f"{span}  {title}{flag}  [{calendar_id}]"


def _emit(lines: Iterable[str]) -> None:
    """Write the lines; a reader that closed the pipe (``| head``) ends it quietly, exit 0."""
    try:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail
        sys.exit(0)


@click.command()
@click.option("--from", "start", metavar="WHEN", callback=_when,
              help="Start of the range: a date (UTC midnight) or an RFC 3339 date-time "
                   "(default: now).")
@click.option("--to", "end", metavar="WHEN", callback=_when,
              help=f"End of the range, exclusive (default: --from + {DEFAULT_DAYS} days).")
@click.option("--calendar", "calendar_ids", multiple=True, metavar="ID",
              help="Only this calendar (repeatable).")
@click.option("--json", "as_json", is_flag=True,
              help='JSON lines: {"calendar", "event_id", "instance_id", "start", "end", '
                   '"all_day", "status", "summary"}.')
@pass_context
def agenda(ctx: Context, start: dt.datetime | None, end: dt.datetime | None,
           calendar_ids: tuple[str, ...], as_json: bool) -> None:
    """Every occurrence overlapping [--from, --to), by start: recurring series expanded.

    The same occurrences as Google's singleEvents=true listing of that range:
    modified instances at their new times, cancelled ones left out.
    """
    from reconciler.cli.read import _check_calendars
    from reconciler.store.occurrences import calendar_ids as known
    from reconciler.store.occurrences import occurrences_between

    lo = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
    hi = end or lo + dt.timedelta(days=DEFAULT_DAYS)
    if hi <= lo:
        raise click.BadParameter(f"--to ({_moment(hi)}) must be after --from ({_moment(lo)})",
                                 param_hint="'--to'")
    ctx.read_store()
    _check_calendars(calendar_ids)
    names = {pk: cid for pk, cid in known().items() if not calendar_ids or cid in calendar_ids}
    rows = occurrences_between(sorted(names), lo, hi)
    if as_json:
        _emit(json_line(names[pk], occ) for pk, occ in rows)
    else:
        _emit(text_line(names[pk], occ) for pk, occ in rows)

"""The read-only commands: ``export``, ``changes`` and ``status``.

Invariants: none of them creates or writes a database (a missing SQLite file is
one line naming its absolute path, exit 1); an unknown ``--calendar`` is a usage
error (exit 2) naming the closest known ids; every time in JSON output is ISO
8601 UTC with ``Z``. ``status --check`` answers like a monitoring plugin: 0 OK,
1 a calendar or account failing or lagging, 2 the mirror unreadable.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable

import click

from reconciler.cli.context import Context, pass_context
from reconciler.errors import ReconcilerError, first_line
from reconciler.suggest import require_known

STATE_CHOICES = ("ok", "never_synced", "failing", "needs_reauth", "gone", "removed", "stale")


def _known_calendar_ids() -> list[str]:
    from reconciler.store.models import Calendar

    return [cid for (cid,) in Calendar.select(Calendar.calendar_id).tuples()]


def _check_calendars(requested: Iterable[str]) -> None:
    requested = [c for c in requested if c]
    if requested:
        require_known(requested, set(_known_calendar_ids()))


@click.command()
@click.option("--calendar", "calendar_id", metavar="ID", help="Only this calendar.")
@click.option("--include-cancelled", is_flag=True, help="Also rows whose status is cancelled.")
@pass_context
def export(ctx: Context, calendar_id: str | None, include_cancelled: bool) -> None:
    """Print the mirror as JSON lines: {"account", "calendar", "status", "event"}."""
    from reconciler.store import calendars
    from reconciler.store.events import iter_events

    ctx.read_store()
    calendar_pk = None
    if calendar_id is not None:
        _check_calendars([calendar_id])
        row = calendars.get_calendar(calendar_id)
        calendar_pk = row.id if row is not None else None
    out = sys.stdout
    dumps = json.dumps
    for account, cal, status, raw in iter_events(calendar_pk, include_cancelled):
        out.write(f'{{"account":{dumps(account, ensure_ascii=False)},'
                  f'"calendar":{dumps(cal, ensure_ascii=False)},'
                  f'"status":{dumps(status)},"event":{raw}}}\n')
    out.flush()


@click.command()
@click.option("--since", type=click.IntRange(min=0, max=2**63 - 1), default=0, show_default=True,
              help="Only changes with id > N.")
@click.option("--follow", is_flag=True, help="Keep printing new changes as they are committed.")
@click.option("--calendar", "calendar_id", metavar="ID", help="Only this calendar.")
@click.option("--poll", type=click.FloatRange(min=0.05, max=3600), default=1.0, show_default=True,
              help="Seconds between reads with --follow.")
@click.option("--diff", "with_diff", is_flag=True,
              help="Add before/after values of the changed fields to `updated` lines.")
@click.option("--full", is_flag=True, help="With --diff: long values untruncated.")
@pass_context
def changes(ctx: Context, since: int, follow: bool, calendar_id: str | None, poll: float,
            with_diff: bool, full: bool) -> None:
    """Print the change feed as JSON lines, in id order.

    `updated` lines carry "fields", the sorted top-level keys that changed;
    --diff adds "diff": {field: {"before", "after"}} (strings over 200
    characters cut unless --full; attendees also get "changes": who was added,
    removed or answered differently).
    """
    from reconciler.store.changes import read_changes

    stop = _stop_flag() if follow else None
    ctx.read_store()
    if calendar_id is not None:
        _check_calendars([calendar_id])
    last = since
    while True:
        rows = read_changes(last, 1000, calendar_id, diff=with_diff, full=full)
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
            last = row["id"]
        if rows and len(rows) == 1000:
            continue
        if stop is None or stop():
            break
        sys.stdout.flush()
        time.sleep(poll)


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per calendar (times ISO 8601 UTC with Z), no summary.")
@click.option("--account", "accounts", multiple=True, metavar="NAME",
              help="Only this account's calendars (repeatable).")
@click.option("--state", "states", multiple=True, type=click.Choice(STATE_CHOICES),
              help="Only calendars in this state (repeatable; `stale`: behind their interval).")
@click.option("--failing", is_flag=True, help="Only failing, stale or never-synced calendars.")
@click.option("--calendar", "calendar_ids", multiple=True, metavar="ID",
              help="Only this calendar (repeatable).")
@click.option("--check", is_flag=True,
              help="Monitoring-plugin mode: one line, exit 0 OK / 1 failing or lagging / "
                   "2 mirror unreadable.")
@click.option("--max-lag", type=click.FloatRange(min=0, max=366 * 86400), metavar="SECONDS",
              help="Allowed lag behind the interval (default: each calendar's interval).")
@pass_context
def status(ctx: Context, as_json: bool, accounts: tuple[str, ...], states: tuple[str, ...],
           failing: bool, calendar_ids: tuple[str, ...], check: bool, max_lag: float | None) -> None:
    """A summary line, then every calendar: problems first, names next to ids.

    Columns: state (* = syncing now), events, last success, failures in a row,
    lag behind the interval, watch channel, last error.
    """
    from reconciler import status as logic

    if max_lag is not None and not check:
        raise click.UsageError("--max-lag works only with --check")
    if check:
        try:
            config = ctx.config(allow_missing=True)
            ctx.read_store(config)
            rows, problems = logic.calendar_status(config), logic.account_problems()
        except ReconcilerError as exc:
            if ctx.debug:
                raise
            click.echo(f"CRITICAL: mirror unreadable: {first_line(exc)}")
            sys.exit(logic.CHECK_CRITICAL)
        code, line = logic.evaluate_check(rows, problems, max_lag)
        click.echo(line)
        sys.exit(code)

    config = ctx.config(allow_missing=True)
    ctx.read_store(config)
    _check_calendars(calendar_ids)
    rows = logic.calendar_status(config)
    problems = [a for a in logic.account_problems() if not accounts or a["account"] in accounts]
    selected = logic.order_rows(logic.filter_rows(rows, accounts=accounts, states=states,
                                                  failing=failing, calendars=calendar_ids))
    if as_json:
        for row in selected:
            click.echo(json.dumps(logic.to_json(row), ensure_ascii=False))
        return
    click.echo(logic.summarize(logic.filter_rows(rows, accounts=accounts), problems, max_lag).line())
    for account in problems:
        error = (account["last_error"] or "").splitlines()[0] if account["last_error"] else ""
        click.echo(f"account {account['account']}: {account['state'].replace('_', ' ')}"
                   + (f": {error}" if error else ""))
    for line in logic.in_flight(selected):
        click.echo(line)
    if rows:
        click.echo(logic.render_table(selected, width=shutil.get_terminal_size((160, 24)).columns))


def _stop_flag() -> Callable[[], bool]:
    stopped = [False]

    def handler(signum: int, frame: object) -> None:
        stopped[0] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return lambda: stopped[0]

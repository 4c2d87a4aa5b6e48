"""``reconciler history EVENT_ID``: an event's stored versions and what changed between them.

Reads ``event_version`` (kept when ``[store] history`` > 0) and prints the
versions oldest first, each with the fields that changed since the one before
(:mod:`reconciler.diff`). Invariants: read-only, like the other read commands
(never creates a database); an unknown ``--calendar`` is exit 2 naming the
closest ids; an event with no stored versions is one line, exit 1; JSON times
are ISO 8601 UTC with ``Z``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from reconciler.cli.context import Context, pass_context
from reconciler.cli.read import _check_calendars
from reconciler.errors import ReconcilerError


class NoHistory(ReconcilerError):
    """The event has no stored versions (exit 1)."""


def _iso(value: dt.datetime | str) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def timeline(versions: list[tuple[int | None, str, str, Any]], calendar_id: str, event_id: str,
             *, full: bool = False) -> list[dict[str, Any]]:
    """The printable timeline of an event's versions: each with its diff from the previous."""
    from reconciler.diff import changed_fields, describe, field_diff

    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for change_id, kind, raw, at in versions:
        event = json.loads(raw)
        line: dict[str, Any] = {"calendar": calendar_id, "event_id": event_id,
                                "change_id": change_id, "kind": kind or None, "at": _iso(at)}
        if previous is not None:
            line["fields"] = changed_fields(previous, event)
            line["diff"] = describe(field_diff(previous, event), full=full)
        line["event"] = event
        out.append(line)
        previous = event
    return out


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_text(lines: list[dict[str, Any]]) -> list[str]:
    """A readable form of :func:`timeline`: one header per version, one line per field."""
    text: list[str] = []
    for line in lines:
        change = f"change {line['change_id']}" if line["change_id"] is not None else "no change row"
        text.append(f"{line['at']}  {line['kind'] or 'version'}  ({change})  "
                    f"{line['event'].get('summary', '')}")
        for key, entry in line.get("diff", {}).items():
            before = _text(entry["before"]) if "before" in entry else "(absent)"
            after = _text(entry["after"]) if "after" in entry else "(absent)"
            text.append(f"    {key}: {before} -> {after}")
            for who in entry.get("changes", []):
                detail = {k: v for k, v in who.items() if k not in ("attendee", "change")}
                text.append(f"        {who['attendee']}: {who['change']} {_text(detail)}")
    return text


@click.command()
@click.argument("event_id")
@click.option("--calendar", "calendar_id", metavar="ID",
              help="The calendar holding the event (needed when several do).")
@click.option("--text", "as_text", is_flag=True, help="A readable timeline instead of JSON lines.")
@click.option("--full", is_flag=True, help="Long values untruncated.")
@pass_context
def history(ctx: Context, event_id: str, calendar_id: str | None, as_text: bool,
            full: bool) -> None:
    """Print an event's stored versions, oldest first, with the diffs between them.

    Versions are kept only with `[store] history = N` (the last N per event).
    JSON lines: {"calendar", "event_id", "change_id", "kind", "at", "fields",
    "diff", "event"}; the first version has no "fields"/"diff".
    """
    from reconciler.store.events import read_versions, version_calendars

    config = ctx.config(allow_missing=True)
    ctx.read_store(config)
    if calendar_id is not None:
        _check_calendars([calendar_id])
    holders = version_calendars(event_id)
    if calendar_id is not None:
        holders = [(pk, cid) for pk, cid in holders if cid == calendar_id]
    if not holders:
        where = f" in calendar {calendar_id}" if calendar_id else ""
        hint = ("" if config.store.history else
                " (versions are kept only with [store] history = N)")
        raise NoHistory(f"no stored versions of event {event_id}{where}{hint}")
    if len(holders) > 1:
        raise click.UsageError(f"event {event_id} is in several calendars: pass --calendar "
                               + " or ".join(cid for _, cid in holders))
    pk, cid = holders[0]
    lines = timeline(read_versions(pk, event_id), cid, event_id, full=full)
    if as_text:
        for row in render_text(lines):
            click.echo(row)
    else:
        for line in lines:
            click.echo(json.dumps(line, ensure_ascii=False))

"""The append-only change feed, with ids that become visible in id order.

A reader that follows ``--since N`` must never miss a row. Auto-increment ids
can commit out of order under concurrent writers (MySQL especially), so ids
are handed out from a counter row whose lock is held until the writing
transaction commits: the next writer waits, so id order is commit order.
Allocation is the last step of the transaction to keep that lock short.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.clock import utcnow
from reconciler.diff import describe
from reconciler.store.bulk import write_many
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Calendar, Change, Counter


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One change-feed row before it gets its id."""

    event_id: str
    kind: str  # created | updated | deleted
    etag: str
    fields: str | None = None  # ``updated``: JSON list of changed keys (reconciler.diff)
    diff: str | None = None  # ``updated``: JSON {key: {"before", "after"}}


@map_db_errors()
def append_changes(calendar_pk: int, changes: Sequence[ChangeRecord]) -> list[int]:
    """Write change rows with ordered ids; call inside the writing transaction.

    Returns the ids given to ``changes``, in order.
    """
    if not changes:
        return []
    count = len(changes)
    Counter.update(value=Counter.value + count).where(Counter.name == "change").execute()
    last = Counter.select(Counter.value).where(Counter.name == "change").scalar()
    first = int(last) - count + 1
    now = utcnow()
    rows = [(first + i, calendar_pk, c.event_id, c.kind, c.etag, now, c.fields, c.diff)
            for i, c in enumerate(changes)]
    write_many("change-insert", _COLUMNS, _insert_query, rows)
    return [first + i for i in range(count)]


_COLUMNS = (Change.id, Change.calendar, Change.event_id, Change.kind, Change.etag, Change.at,
            Change.fields, Change.diff)


def _insert_query(rows: Sequence[tuple[Any, ...]], kind: str) -> Any:
    return Change.insert_many(rows, fields=_COLUMNS)


@map_db_errors()
def read_changes(since: int = 0, limit: int = 1000, calendar_id: str | None = None, *,
                 diff: bool = False, full: bool = False) -> list[dict[str, Any]]:
    """Change rows with id > ``since`` in id order, as the JSON the CLI prints.

    ``updated`` rows carry ``fields`` (the sorted changed keys); with ``diff``
    also ``diff``: before/after of each (long strings truncated unless ``full``,
    attendee detail under ``attendees.changes``, see :func:`reconciler.diff.describe`).
    """
    columns = [Change.id, Calendar.calendar_id, Calendar.account, Change.event_id,
               Change.kind, Change.etag, Change.at, Change.fields]
    if diff:
        columns.append(Change.diff)
    query = (Change.select(*columns)
             .join(Calendar)
             .where(Change.id > since)
             .order_by(Change.id)
             .limit(limit))
    if calendar_id is not None:
        query = query.where(Calendar.calendar_id == calendar_id)
    rows = []
    for cid, cal, account, event_id, kind, etag, at, fields, *rest in query.tuples():
        row: dict[str, Any] = {"id": cid, "calendar": cal, "account": account,
                               "event_id": event_id, "kind": kind, "etag": etag, "at": _iso(at)}
        if fields is not None:
            row["fields"] = json.loads(fields)
        if rest and rest[0] is not None:
            row["diff"] = describe(json.loads(rest[0]), full=full)
        rows.append(row)
    return rows


def _iso(value: dt.datetime | str) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")

"""Read and write event rows in batches: one query per page, one transaction per write.

The sync hot path touches the database through exactly two calls per page:
``load_versions`` (one SELECT per chunk of ids) and ``write_page`` (one upsert,
one counter update and one change insert inside a single transaction). The
mark-and-sweep at the end of a full listing is ``sweep``. Calendar sync state
(cursors) is never written here: ``calendars.record_success`` stores it once the
pass is complete. Every public function maps database errors into
``StoreError`` (see :mod:`reconciler.store.dberrors`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import peewee

from reconciler.clock import utcnow
from reconciler.eventfields import EventFields, stored_etag, stored_id, too_deep
from reconciler.reconcile import CANCELLED, Version
from reconciler.store.bulk import cached_sql, write_many
from reconciler.store.changes import ChangeRecord, append_changes
from reconciler.store.db import dialect, write_transaction
from reconciler.store.dberrors import map_db_errors, retry_conflicts
from reconciler.store.dialects import dialect_of
from reconciler.store.models import Calendar, Event, EventVersion, database_proxy, key_of
from reconciler.store.occurrences import Window, refresh_events, refresh_page

CHUNK = 500  # ids per IN (...) list; well under every engine's parameter limit
PAGE_CHUNK = 400  # ids per load_page statement: two parameters each, under SQLite's old 999


@dataclass(slots=True)
class EventWrite:
    """One row to upsert: the derived fields, the effective ``updated`` and the raw JSON."""

    fields: EventFields
    updated_ms: int
    raw_json: str


def dump_raw(resource: dict[str, Any]) -> str | None:
    """Serialise a resource once, compactly, keeping non-ASCII as is (utf8mb4).

    orjson writes exactly what ``json.dumps(..., ensure_ascii=False,
    separators=(",", ":"))`` would, several times faster. What it refuses goes
    to the standard encoder: integers beyond 64 bits, and lone surrogates,
    which are written as JSON escapes (``\\ud800``) so the text is valid UTF-8
    and decodes back to the same resource. NUL is always the escape
    ``\\u0000``, never a NUL character (PostgreSQL text cannot hold one).
    None: the resource is nested deeper than ``MAX_DEPTH`` and is not stored.
    A resource that carries the bytes Google sent (``raw``: a
    :class:`~reconciler.google.pages.RawItem`) is not encoded at all: those
    bytes are stored verbatim (they are JSON text, escapes included).
    """
    raw = getattr(resource, "raw", None)
    if isinstance(raw, bytes):
        return raw.decode("utf-8")
    try:
        return orjson.dumps(resource).decode("utf-8")
    except TypeError:
        if too_deep(resource):
            return None
        text = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


@map_db_errors()
def load_versions(calendar_pk: int, event_ids: Iterable[str]) -> dict[str, Version]:
    """The stored versions of the given events of one calendar, by event id.

    One SELECT per chunk of ids; the statement text is rendered by Peewee once
    per chunk size and dialect, not once per page.
    """
    ids = list(dict.fromkeys(event_ids))
    found: dict[str, Version] = {}
    if not ids:
        return found
    db = database_proxy.obj
    kind = dialect(db)
    for start in range(0, len(ids), CHUNK):
        # By key, not by the event_id column: that holds a shortened id when the
        # id is longer than the column.
        by_key = {key_of(i): i for i in ids[start:start + CHUNK]}
        sql = _versions_sql(kind, len(by_key))
        for key, etag, updated_ms, sequence, status in db.execute_sql(
                sql, [calendar_pk, *by_key]):
            found[by_key[key]] = Version(etag, updated_ms, sequence, status)
    return found


def _versions_sql(kind: str, width: int) -> str:
    return cached_sql(("versions", kind, width), lambda: (
        Event.select(Event.event_key, Event.etag, Event.updated_ms, Event.sequence, Event.status)
        .where((Event.calendar == -1)
               & (Event.event_key.in_([f"k{i:039d}" for i in range(width)])))), width + 1)


@map_db_errors()
def load_page(calendar_pk: int, incoming: Sequence[tuple[str, str]]
              ) -> tuple[dict[str, Version], dict[str, str]]:
    """Stored versions of a page's events, and the raw JSON of those that changed.

    ``incoming`` is the page's (event id, etag) pairs. One SELECT per chunk of
    ids, like :func:`load_versions`; the raw column comes back only for rows
    whose stored etag is none of the page's etags (the ids that arrive as
    changes), so an unchanged page reads no raw JSON at all.
    """
    pairs = list(dict(incoming).items())
    found: dict[str, Version] = {}
    raws: dict[str, str] = {}
    if not pairs:
        return found, raws
    db = database_proxy.obj
    kind = dialect(db)
    for start in range(0, len(pairs), PAGE_CHUNK):
        chunk = pairs[start:start + PAGE_CHUNK]
        sql = _page_sql(kind, len(chunk))
        # By key (the event_id column may hold a shortened id); etags as stored.
        by_key = {key_of(i): i for i, _ in chunk}
        params = [*[stored_etag(etag) for _, etag in chunk], calendar_pk, *by_key]
        for key, etag, updated_ms, sequence, status, raw in db.execute_sql(sql, params):
            event_id = by_key[key]
            found[event_id] = Version(etag, updated_ms, sequence, status)
            if raw is not None:
                raws[event_id] = raw
    return found, raws


def _page_sql(kind: str, width: int) -> str:
    def build() -> peewee.Query:  # only on a cache miss
        etags = [f"e{i:039d}" for i in range(width)]
        changed_raw = peewee.Case(None, [(Event.etag.in_(etags), peewee.SQL("NULL"))], Event.raw)
        return (Event.select(Event.event_key, Event.etag, Event.updated_ms, Event.sequence,
                             Event.status, changed_raw)
                .where((Event.calendar == -1)
                       & (Event.event_key.in_([f"k{i:039d}" for i in range(width)]))))
    return cached_sql(("page", kind, width), build, 2 * width + 1)


@map_db_errors()
def load_raw(calendar_pk: int, event_ids: Iterable[str]) -> dict[str, str]:
    """The stored raw JSON of the given events (a page's rare etag coincidences)."""
    ids = list(dict.fromkeys(event_ids))
    raws: dict[str, str] = {}
    for start in range(0, len(ids), CHUNK):
        by_key = {key_of(i): i for i in ids[start:start + CHUNK]}
        query = (Event.select(Event.event_key, Event.raw)
                 .where((Event.calendar == calendar_pk) & Event.event_key.in_(list(by_key))))
        raws.update((by_key[key], raw) for key, raw in query.tuples())
    return raws


@map_db_errors()
def has_rows(calendar_pk: int) -> bool:
    """Whether the mirror holds any row (live or tombstone) of the calendar."""
    return Event.select(Event.id).where(Event.calendar == calendar_pk).limit(1).exists()


_PRESERVE = (Event.etag, Event.status, Event.sequence, Event.updated_ms, Event.summary,
             Event.start_utc, Event.end_utc, Event.start_date, Event.end_date,
             Event.recurring_event_id, Event.original_start, Event.raw, Event.mirrored_at,
             Event.event_type)


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=None) if value is not None else None


# Column order of the tuples ``_row`` builds; the upsert binds them in this order.
_COLUMNS = (Event.calendar, Event.event_id, Event.event_key, Event.etag, Event.status,
            Event.sequence, Event.updated_ms, Event.summary, Event.start_utc, Event.end_utc,
            Event.start_date, Event.end_date, Event.recurring_event_id, Event.original_start,
            Event.raw, Event.mirrored_at, Event.event_type)


def _row(calendar_pk: int, write: EventWrite, now: dt.datetime) -> tuple[Any, ...]:
    f = write.fields
    return (calendar_pk, stored_id(f.event_id), key_of(f.event_id), f.etag, f.status, f.sequence,
            write.updated_ms, f.summary, _naive(f.start_utc), _naive(f.end_utc), f.start_date,
            f.end_date, f.recurring_event_id, f.original_start, write.raw_json, now, f.event_type)


def _upsert_query(rows: Sequence[tuple[Any, ...]], kind: str) -> Any:
    query = Event.insert_many(rows, fields=_COLUMNS)
    return dialect_of(database_proxy.obj).upsert(query, (Event.calendar, Event.event_key),
                                                 _PRESERVE)


def upsert_rows(calendar_pk: int, writes: Sequence[EventWrite]) -> None:
    """Insert or replace event rows in batched statements (call inside a transaction)."""
    if not writes:
        return
    now = utcnow()
    rows = [_row(calendar_pk, w, now) for w in writes]
    write_many("event-upsert", _COLUMNS, _upsert_query, rows)


@map_db_errors()
@retry_conflicts()
def write_page(calendar_pk: int, writes: Sequence[EventWrite],
               changes: Sequence[ChangeRecord], *, history: int = 0,
               occurrences: Window | None = None) -> None:
    """Apply one page atomically: event rows and their change rows (a page's plan).

    ``history`` > 0 also records each written version in ``event_version`` and
    prunes every written event to its last ``history`` versions, in the same
    transaction. ``occurrences`` (the calendar's window) re-expands the series
    the page touched into the ``occurrence`` table, in the same transaction.

    A deadlock or serialization failure runs the transaction again at once
    (:func:`~reconciler.store.dberrors.retry_conflicts`), not at the next pass.
    """
    if not writes and not changes:
        return
    with write_transaction(database_proxy.obj):
        upsert_rows(calendar_pk, writes)
        ids = append_changes(calendar_pk, changes)
        if history > 0 and writes:
            change_of = {c.event_id: cid for c, cid in zip(changes, ids, strict=True)}
            record_versions(calendar_pk, writes, change_of, history)
        if occurrences is not None and writes:
            refresh_page(calendar_pk, writes, occurrences)


_VERSION_COLUMNS = (EventVersion.calendar, EventVersion.event_id, EventVersion.event_key,
                    EventVersion.change_id, EventVersion.raw, EventVersion.at)


def _version_insert(rows: Sequence[tuple[Any, ...]], kind: str) -> Any:
    return EventVersion.insert_many(rows, fields=_VERSION_COLUMNS)


def record_versions(calendar_pk: int, writes: Sequence[EventWrite], change_of: dict[str, int],
                    keep: int) -> None:
    """Append the written versions to ``event_version`` and keep the last ``keep`` of each.

    Call inside the page's transaction: one insert, one SELECT of the written
    events' version ids per chunk, one DELETE per chunk of surplus ids.
    """
    now = _naive(utcnow())
    rows = []
    for w in writes:
        sid = stored_id(w.fields.event_id)  # the id as every other column stores it (and changes)
        rows.append((calendar_pk, sid, key_of(w.fields.event_id), change_of.get(sid), w.raw_json, now))
    write_many("version-insert", _VERSION_COLUMNS, _version_insert, rows)
    keys = list(dict.fromkeys(row[2] for row in rows))
    surplus: list[int] = []
    for start in range(0, len(keys), CHUNK):
        query = (EventVersion.select(EventVersion.event_key, EventVersion.id)
                 .where((EventVersion.calendar == calendar_pk)
                        & EventVersion.event_key.in_(keys[start:start + CHUNK]))
                 .order_by(EventVersion.event_key, EventVersion.id.desc()))
        seen: dict[str, int] = {}
        for key, pk in query.tuples():
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > keep:
                surplus.append(pk)
    for start in range(0, len(surplus), CHUNK):
        EventVersion.delete().where(EventVersion.id.in_(surplus[start:start + CHUNK])).execute()


@map_db_errors()
def version_calendars(event_id: str) -> list[tuple[int, str]]:
    """(calendar pk, calendar id) of every calendar holding versions of ``event_id``."""
    query = (EventVersion.select(Calendar.id, Calendar.calendar_id).distinct()
             .join(Calendar, on=(EventVersion.calendar == Calendar.id))
             .where(EventVersion.event_key == key_of(event_id))
             .order_by(Calendar.calendar_id))
    return [(int(pk), str(cid)) for pk, cid in query.tuples()]


@map_db_errors()
def read_versions(calendar_pk: int, event_id: str) -> list[tuple[int | None, str, str,
                                                                   dt.datetime]]:
    """An event's stored versions, oldest first: (change id, change kind or "", raw, at)."""
    from reconciler.store.models import Change

    query = (EventVersion.select(EventVersion.change_id, Change.kind, EventVersion.raw,
                                 EventVersion.at)
             .join(Change, peewee.JOIN.LEFT_OUTER, on=(Change.id == EventVersion.change_id))
             .where((EventVersion.calendar == calendar_pk)
                    & (EventVersion.event_key == key_of(event_id)))
             .order_by(EventVersion.id))
    return [(cid, kind or "", raw, at) for cid, kind, raw, at in query.tuples()]


@map_db_errors()
@retry_conflicts()
def sweep(calendar_pk: int, seen: set[str], listing_updated_ms: int, *,
          window_start: dt.datetime | None = None,
          event_types: Sequence[str] | None = None,
          occurrences: Window | None = None) -> list[ChangeRecord]:
    """Tombstone every live row a completed full listing did not hold but could have.

    A windowed listing (``timeMin = window_start``) returns only events that end
    after the window starts: rows ending earlier (or with no end) are kept as
    they are. A listing filtered by ``event_types`` returns only those types:
    rows of other types are kept too.

    The raw resource stays the last live version (the export shows it with
    status ``cancelled``); ``updated_ms`` moves to the listing's time so an old
    replay of that version cannot resurrect it. Runs in one transaction, with
    the re-expansion of the tombstoned rows' series when ``occurrences`` is set.
    """
    with write_transaction(database_proxy.obj):
        live = (Event.select(Event.id, Event.event_key, Event.event_id, Event.etag)
                .where((Event.calendar == calendar_pk) & (Event.status != CANCELLED)))
        if window_start is not None:
            live = live.where(Event.end_utc > _naive(window_start))
        if event_types:
            live = live.where(Event.event_type.in_(list(event_types)))
        live = list(live.tuples())
        seen_keys = {key_of(i) for i in seen}  # the event_id column may hold a shortened id
        gone = [(pk, event_id, etag) for pk, key, event_id, etag in live
                if key not in seen_keys]
        gone_keys = [key for _, key, _, _ in live if key not in seen_keys] if occurrences else []
        changes = [ChangeRecord(event_id, "deleted", etag) for _, event_id, etag in gone]
        newer = peewee.Case(None, [(Event.updated_ms > listing_updated_ms, Event.updated_ms)],
                            listing_updated_ms)
        pks = [pk for pk, _, _ in gone]
        for start in range(0, len(pks), CHUNK):
            (Event.update(status=CANCELLED, updated_ms=newer, mirrored_at=utcnow())
             .where(Event.id.in_(pks[start:start + CHUNK])).execute())
        append_changes(calendar_pk, changes)
        if occurrences is not None and gone:
            refresh_events(calendar_pk, gone_keys, occurrences)
    return changes


@map_db_errors()
def count_events(calendar_pk: int, include_cancelled: bool = False) -> int:
    """How many rows the mirror holds for a calendar."""
    query = Event.select().where(Event.calendar == calendar_pk)
    if not include_cancelled:
        query = query.where(Event.status != CANCELLED)
    return int(query.count())


def iter_events(calendar_pk: int | None = None,
                include_cancelled: bool = False) -> Iterator[tuple[str, str, str, str]]:
    """Stream (account, calendar id, status, raw JSON) for export, without loading all rows."""
    query = (Event.select(Calendar.account, Calendar.calendar_id, Event.status, Event.raw)
             .join(Calendar)
             .order_by(Event.calendar, Event.event_id))
    if calendar_pk is not None:
        query = query.where(Event.calendar == calendar_pk)
    if not include_cancelled:
        query = query.where(Event.status != CANCELLED)
    db = database_proxy.obj
    with map_db_errors(), dialect_of(db).streaming_read(db):
        yield from query.tuples().iterator()

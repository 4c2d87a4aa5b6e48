"""The ``occurrence`` table: every occurrence of every live event inside a window around now.

People ask the mirror "what is on between A and B"; with only series rows that
means re-implementing RFC 5545 in every query. This module keeps the answer
in SQL, maintained with the mirror:

* :func:`refresh_page` runs inside a page's transaction and re-expands only
  the series the page touched (a new, changed, cancelled or deleted series;
  an exception re-expands its series), so the table never disagrees with the
  event rows committed with it;
* :func:`refresh_events` does the same for the rows a mark-and-sweep tombstoned;
* :func:`ensure_window` is the daily roll: it extends the window forward by
  expanding only the new days and drops rows that fell out of it; a window it
  has seen this process is a dictionary look-up, so a no-change poll costs no
  statement;
* :func:`expected` is a fresh expansion of the stored rows (the rebuild, and
  what the tests compare the table with).

Expansion itself is :mod:`reconciler.recurrence` (pure). Times are stored as
naive UTC, like every other table.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import peewee

from reconciler.eventfields import SUMMARY_CHARS, clean_text, stored_id
from reconciler.recurrence import Occurrence, expand_series, series_id_of
from reconciler.store.bulk import write_many
from reconciler.store.db import write_transaction
from reconciler.store.dberrors import map_db_errors, retry_conflicts
from reconciler.store.models import BaseModel, Calendar, Event, database_proxy, key_of

if TYPE_CHECKING:
    from reconciler.store.events import EventWrite

CHUNK = 500
UTC = dt.UTC


class _Occurrence(BaseModel):
    """One occurrence (the schema of migration 0008)."""

    calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE", index=False)
    series_id = peewee.CharField(max_length=1024)
    series_key = peewee.CharField(max_length=40)
    instance_id = peewee.TextField()
    instance_key = peewee.CharField(max_length=40)
    start_utc = peewee.DateTimeField()
    end_utc = peewee.DateTimeField()
    start_date = peewee.DateField(null=True)
    end_date = peewee.DateField(null=True)
    all_day = peewee.BooleanField(default=False)
    status = peewee.CharField(max_length=32)
    from_exception = peewee.BooleanField(default=False)
    summary = peewee.TextField(null=True)

    class Meta:
        table_name = "occurrence"
        indexes = ((("calendar", "series_key", "instance_key"), True),
                   (("calendar", "start_utc", "end_utc"), False),
                   (("start_utc", "end_utc"), False))


class _Window(BaseModel):
    """The window a calendar's occurrence rows cover."""

    calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE", unique=True)
    window_start = peewee.DateTimeField()
    window_end = peewee.DateTimeField()

    class Meta:
        table_name = "occurrence_window"


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC range ``[start, end)`` (aware datetimes)."""

    start: dt.datetime
    end: dt.datetime


def window_for(now: dt.datetime, past_days: int, future_days: int) -> Window:
    """The window for ``now``: whole UTC days, so it moves once a day."""
    day = dt.datetime(now.year, now.month, now.day, tzinfo=UTC)
    return Window(day - dt.timedelta(days=past_days), day + dt.timedelta(days=future_days + 1))


def _naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- rows ---------------------------------------------------------------------

_COLUMNS = (_Occurrence.calendar, _Occurrence.series_id, _Occurrence.series_key,
            _Occurrence.instance_id, _Occurrence.instance_key, _Occurrence.start_utc,
            _Occurrence.end_utc, _Occurrence.start_date, _Occurrence.end_date,
            _Occurrence.all_day, _Occurrence.status, _Occurrence.from_exception,
            _Occurrence.summary)


def _rows(calendar_pk: int, occs: Iterable[Occurrence]) -> list[tuple[Any, ...]]:
    """Table rows; per-series values (stored id, key, clean id, summary) computed once."""
    series_cache: dict[str, tuple[str, str, bool]] = {}
    summaries: dict[str, str] = {}
    rows: list[tuple[Any, ...]] = []
    for occ in occs:
        series = occ.series_id
        cached = series_cache.get(series)
        if cached is None:
            cached = series_cache[series] = (stored_id(series), key_of(series),
                                             clean_text(series) is series)
        sid, skey, clean = cached
        iid = occ.instance_id
        if not (clean and iid.startswith(series)):  # a suffix we wrote is plain ASCII
            iid = clean_text(iid)
        summary = occ.summary
        if summary is not None:
            cut = summaries.get(summary)
            if cut is None:
                cut = summaries[summary] = clean_text(summary)[:SUMMARY_CHARS]
            summary = cut
        if occ.all_day:
            s, e = occ.start, occ.end
            rows.append((calendar_pk, sid, skey, iid, key_of(occ.instance_id),
                         dt.datetime(s.year, s.month, s.day), dt.datetime(e.year, e.month, e.day),
                         s, e, 1, occ.status[:32], int(occ.from_exception), summary))
        else:
            rows.append((calendar_pk, sid, skey, iid, key_of(occ.instance_id),
                         _naive(occ.start_utc), _naive(occ.end_utc), None, None, 0,
                         occ.status[:32], int(occ.from_exception), summary))
    return rows


def _insert(rows: Sequence[tuple[Any, ...]], kind: str) -> Any:
    return _Occurrence.insert_many(rows, fields=_COLUMNS)


def _insert_missing(rows: Sequence[tuple[Any, ...]], kind: str) -> Any:
    return _Occurrence.insert_many(rows, fields=_COLUMNS).on_conflict_ignore()


def _write(calendar_pk: int, occs: Iterable[Occurrence], *, missing_only: bool = False) -> None:
    rows = _rows(calendar_pk, occs)
    if rows:
        if missing_only:
            write_many("occurrence-insert-missing", _COLUMNS, _insert_missing, rows)
        else:
            write_many("occurrence-insert", _COLUMNS, _insert, rows)


def _load(raws: Iterable[str]) -> list[dict[str, Any]]:
    out = []
    for raw in raws:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _expand_groups(resources: Iterable[dict[str, Any]], window: Window,
                   only: set[str] | None = None) -> list[Occurrence]:
    """Expand rows grouped by series (masters, singles and their exceptions)."""
    masters: dict[str, dict[str, Any]] = {}
    exceptions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for res in resources:
        if res.get("recurringEventId"):
            exceptions[series_id_of(res)].append(res)
        else:
            masters[str(res.get("id", ""))] = res
    out: list[Occurrence] = []
    for series in set(masters) | set(exceptions):
        if only is not None and series not in only:
            continue
        out.extend(expand_series(masters.get(series), exceptions.get(series, ()),
                                 window.start, window.end))
    return out


# -- the page's refresh -------------------------------------------------------


def refresh_page(calendar_pk: int, writes: Sequence[EventWrite], window: Window) -> None:
    """Re-expand the series a page's writes touched (call inside the page's transaction).

    A single event is expanded from its write alone; a recurring series (a
    master or an exception in the page) from its master and every exception
    stored now, the page's included. Statements: one DELETE per chunk of
    series, one read of the recurring series touched (when there is one), one
    insert.
    """
    singles: dict[str, dict[str, Any]] = {}
    recurring: set[str] = set()
    for write in writes:
        f = write.fields
        if f.recurring_event_id:
            recurring.add(f.recurring_event_id)
            continue
        raw = write.raw_json
        if '"recurrence"' in raw:
            recurring.add(f.event_id)
            continue
        singles[f.event_id] = {"id": f.event_id, "status": f.status, "summary": f.summary,
                               **_times(f.start_utc, f.end_utc, f.start_date, f.end_date)}
    touched = set(singles) | recurring
    if not touched:
        return
    _delete_series(calendar_pk, touched)
    occs = _expand_groups(singles.values(), window)
    if recurring:
        occs.extend(_expand_groups(_series_rows(calendar_pk, recurring), window, recurring))
    _write(calendar_pk, occs)


def _times(start_utc: dt.datetime | None, end_utc: dt.datetime | None,
           start_date: dt.date | None, end_date: dt.date | None) -> dict[str, Any]:
    """start/end objects of a single event from its derived columns (no JSON parse)."""
    if start_date is not None:
        return {"start": {"date": start_date.isoformat()},
                "end": {"date": (end_date or start_date).isoformat()}}
    if start_utc is not None:
        end = end_utc or start_utc
        return {"start": {"dateTime": _aware(start_utc).isoformat()},
                "end": {"dateTime": _aware(end).isoformat()}}
    return {}


def _delete_series(calendar_pk: int, series: Iterable[str]) -> None:
    keys = sorted({key_of(s) for s in series})
    for start in range(0, len(keys), CHUNK):
        (_Occurrence.delete().where((_Occurrence.calendar == calendar_pk)
                                    & _Occurrence.series_key.in_(keys[start:start + CHUNK]))
         .execute())


def _series_rows(calendar_pk: int, series: set[str]) -> list[dict[str, Any]]:
    """The stored rows of the given series: masters by key, exceptions by parent id."""
    ids = sorted(series)
    raws: list[str] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        query = (Event.select(Event.raw)
                 .where((Event.calendar == calendar_pk)
                        & (Event.event_key.in_([key_of(i) for i in chunk])
                           | Event.recurring_event_id.in_(chunk))))
        raws.extend(raw for (raw,) in query.tuples())
    return _load(raws)


def refresh_events(calendar_pk: int, event_keys: Iterable[str], window: Window) -> None:
    """Re-expand the series of the rows with these keys (a sweep's; inside its transaction)."""
    keys = list(dict.fromkeys(event_keys))
    series: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        query = (Event.select(Event.raw)
                 .where((Event.calendar == calendar_pk)
                        & Event.event_key.in_(keys[start:start + CHUNK])))
        series.update(series_id_of(res) for res in _load(raw for (raw,) in query.tuples()))
    if series:
        _delete_series(calendar_pk, series)
        _write(calendar_pk, _expand_groups(_series_rows(calendar_pk, series), window, series))


# -- the window -----------------------------------------------------------------

# Per database: the window each calendar's rows are known to cover in this process.
_KNOWN: weakref.WeakKeyDictionary[Any, dict[int, Window | None]] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


def _known() -> dict[int, Window | None]:
    db = database_proxy.obj
    with _KNOWN_LOCK:
        found = _KNOWN.get(db)
        if found is None:
            found = _KNOWN[db] = {}
        return found


def forget_known() -> None:
    """Forget which windows this process has seen (tests that edit the table behind it)."""
    with _KNOWN_LOCK:
        _KNOWN.clear()


@map_db_errors()
def stored_window(calendar_pk: int) -> Window | None:
    """The window the calendar's occurrence rows cover, if they are maintained."""
    row = (_Window.select(_Window.window_start, _Window.window_end)
           .where(_Window.calendar == calendar_pk).tuples().first())
    return None if row is None else Window(_aware(row[0]), _aware(row[1]))


@map_db_errors()
@retry_conflicts()
def ensure_window(calendar_pk: int, window: Window) -> None:
    """Make the calendar's rows cover ``window``: build, roll forward, or nothing.

    Nothing at all (no statement) when this process already saw that window.
    With no stored window (a new calendar, the table just created, or
    occurrences switched back on) the calendar is expanded from scratch. A
    window that moved forward is rolled: rows that ended before the new start
    go, and only the new days are expanded (rows there already are kept).
    """
    known = _known()
    if known.get(calendar_pk) == window:
        return
    if stored_window(calendar_pk) != window:  # one SELECT, no lock, when nothing moved
        with write_transaction(database_proxy.obj):  # IMMEDIATE on SQLite: read, then write
            old = stored_window(calendar_pk)
            if old != window:
                if old is None or window.start < old.start or window.end < old.end \
                        or window.start >= old.end:
                    _rebuild(calendar_pk, window)
                else:
                    _roll(calendar_pk, old, window)
                _save_window(calendar_pk, window, old is None)
    known[calendar_pk] = window


@map_db_errors()
@retry_conflicts()
def disable(calendar_pk: int) -> None:
    """Occurrences switched off: drop the calendar's rows and window (once per process)."""
    known = _known()
    if calendar_pk in known and known[calendar_pk] is None:
        return
    with write_transaction(database_proxy.obj):
        _Occurrence.delete().where(_Occurrence.calendar == calendar_pk).execute()
        _Window.delete().where(_Window.calendar == calendar_pk).execute()
    known[calendar_pk] = None


def _save_window(calendar_pk: int, window: Window, new: bool) -> None:
    if new:
        _Window.insert(calendar=calendar_pk, window_start=_naive(window.start),
                       window_end=_naive(window.end)).execute()
    else:
        (_Window.update(window_start=_naive(window.start), window_end=_naive(window.end))
         .where(_Window.calendar == calendar_pk).execute())


def _rebuild(calendar_pk: int, window: Window) -> None:
    _Occurrence.delete().where(_Occurrence.calendar == calendar_pk).execute()
    _write(calendar_pk, expected(calendar_pk, window))


def _roll(calendar_pk: int, old: Window, new: Window) -> None:
    """Drop what ended before ``new.start``; expand only ``[old.end, new.end)``."""
    start = _naive(new.start)
    (_Occurrence.delete().where((_Occurrence.calendar == calendar_pk)
                                & (_Occurrence.start_utc < start)
                                & (_Occurrence.end_utc <= start)).execute())
    slice_ = Window(old.end, new.end)
    lo, hi = _naive(old.end), _naive(new.end)
    live = Event.status != "cancelled"
    singles = (Event.recurring_event_id.is_null() & live
               & (((Event.start_utc >= lo) & (Event.start_utc < hi))
                  | ((Event.start_date >= lo.date()) & (Event.start_date < hi.date()))))
    masters = (Event.recurring_event_id.is_null() & live
               & Event.raw.contains('"recurrence"'))
    exceptions = Event.recurring_event_id.is_null(False)
    query = (Event.select(Event.raw)
             .where((Event.calendar == calendar_pk) & (singles | masters | exceptions)))
    # Whatever meets the new days is inserted unless a row for it is there already.
    rows = _load(raw for (raw,) in query.tuples())
    _write(calendar_pk, _expand_groups(rows, slice_), missing_only=True)


# -- fresh expansion and reads ---------------------------------------------------


@map_db_errors()
def expected(calendar_pk: int, window: Window) -> list[Occurrence]:
    """A fresh expansion of the calendar's stored rows over ``window`` (by start)."""
    query = (Event.select(Event.raw)
             .where((Event.calendar == calendar_pk)
                    & ((Event.status != "cancelled") | Event.recurring_event_id.is_null(False))))
    occs = _expand_groups(_load(raw for (raw,) in query.tuples()), window)
    occs.sort(key=lambda o: (o.start_utc, o.instance_id))
    return occs


@map_db_errors()
def read_range(calendar_pks: Sequence[int] | None, lo: dt.datetime,
               hi: dt.datetime) -> list[tuple[int, Occurrence]]:
    """Stored occurrences overlapping ``[lo, hi)``, by start (calendar pk, occurrence)."""
    o = _Occurrence
    nlo, nhi = _naive(lo), _naive(hi)
    query = (o.select(o.calendar, o.series_id, o.instance_id, o.start_utc, o.end_utc,
                      o.start_date, o.end_date, o.all_day, o.status, o.from_exception,
                      o.summary)
             .where((o.start_utc < nhi) & ((o.end_utc > nlo)
                                            | ((o.end_utc <= o.start_utc) & (o.start_utc >= nlo))))
             .order_by(o.start_utc, o.instance_id))
    if calendar_pks is not None:
        query = query.where(o.calendar.in_(list(calendar_pks)))
    out = []
    for (cal, series, iid, s, e, sd, ed, all_day, status, from_exc, summary) in query.tuples():
        start: dt.datetime | dt.date = sd if all_day and sd is not None else _aware(s)
        end: dt.datetime | dt.date = ed if all_day and ed is not None else _aware(e)
        out.append((int(cal), Occurrence(series, iid, start, end, bool(all_day), status,
                                         bool(from_exc), summary)))
    return out


@map_db_errors()
def stored_rows(calendar_pk: int) -> list[Occurrence]:
    """Every stored occurrence of one calendar, by start (for tests and audits)."""
    return [occ for _, occ in read_range([calendar_pk], dt.datetime(1, 1, 2, tzinfo=UTC),
                                         dt.datetime(9999, 12, 30, tzinfo=UTC))]


@map_db_errors()
def calendar_ids() -> dict[int, str]:
    """Every mirrored calendar: primary key -> calendar id."""
    query = Calendar.select(Calendar.id, Calendar.calendar_id).order_by(Calendar.calendar_id)
    return {int(pk): str(cid) for pk, cid in query.tuples()}


@map_db_errors()
def occurrences_between(calendar_pks: Sequence[int], lo: dt.datetime,
                        hi: dt.datetime) -> list[tuple[int, Occurrence]]:
    """Every occurrence overlapping ``[lo, hi)`` of the given calendars, by start.

    A calendar whose stored window holds the range is read from the table;
    any other (a range reaching outside the window, occurrences switched off)
    is expanded from its stored rows with the same code that fills the table.
    """
    inside: list[int] = []
    out: list[tuple[int, Occurrence]] = []
    for pk in calendar_pks:
        window = stored_window(pk)
        if window is not None and window.start <= lo and hi <= window.end:
            inside.append(pk)
        else:
            out.extend((pk, occ) for occ in expected(pk, Window(lo, hi)))
    if inside:
        out.extend(read_range(inside, lo, hi))
    out.sort(key=lambda item: (item[1].start_utc, item[1].instance_id, item[0]))
    return out

"""Sync one calendar: list pages, plan each, commit each, then hand back the cursor.

The engine moves data between the API and the store and nothing else: each
page's plan comes from the pure planner (:mod:`reconciler.planner`, built on
:mod:`reconciler.reconcile`), the store applies it, and the pass ends in a
typed :class:`~reconciler.outcome.PassOutcome` that the caller records with
``calendars.record_success``. The engine never touches the ORM and never
reads the config module: it takes a :class:`~reconciler.outcome.CalendarState`
and the ``[sync]`` section (any object with :class:`SyncSettings`' attributes).
Invariants:

* each page is applied in one transaction with its change rows;
* the new ``nextSyncToken`` (or ``updatedMin`` cursor) is never written here:
  it leaves in ``PassOutcome.cursor`` after every page was applied, so a crash
  anywhere replays from the old cursor, and replay is idempotent;
* a full listing ends with mark-and-sweep, and only when it completed;
* a 410 (or a 400 on a stored token) leads to exactly one full resync inside
  the same pass, never a loop;
* a listing that repeats a page token after a page with items, or runs past
  ``items / page_size + PAGE_SLACK`` pages, ends the pass with
  :class:`~reconciler.errors.PageLoop`;
* while page *n* is written, page *n+1* is already being fetched;
* after each committed page ``keep_lease`` runs (it may stop the pass) and
  ``on_page_committed`` hears about it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.clock import now_ms, utcnow
from reconciler.errors import BadRequest, PageLoop, SyncTokenInvalid, UpdatedMinTooOld
from reconciler.eventfields import format_rfc3339, from_millis, parse_rfc3339, to_millis
from reconciler.google.client import CalendarApi
from reconciler.logsetup import RateLimitedLog
from reconciler.outcome import (
    FULL,
    INCREMENTAL,
    UPDATED_MIN,
    CalendarState,
    Counts,
    Cursor,
    PageCallback,
    PageCommitted,
    PassOutcome,
)
from reconciler.planner import Listing, PagePlan, page_ids, plan_page, valid_item
from reconciler.schedule.estimate import LISTING_WINDOW
from reconciler.store import calendars, occurrences
from reconciler.store.events import (
    has_rows,
    load_page,
    load_raw,
    load_versions,
    sweep,
    write_page,
)

log = logging.getLogger("reconciler.engine")
# Events that could not be mirrored as sent (hostile or broken): one line per
# calendar per hour, with a count of the lines held back; every one is counted
# in PassOutcome.bad_events (reconciler_bad_events_total).
BAD_EVENT_LOG = RateLimitedLog(log, 3600.0)

# Pages a listing may take beyond items / page_size: Google (and the emulator)
# send short and empty pages, and an empty page may hand back the token it was
# asked with ("come back here"), so those are limited by this bound only.
PAGE_SLACK = 100


class SyncSettings(Protocol):
    """The knobs of one pass: the attributes of the config's ``[sync]`` section it reads."""

    @property
    def mode(self) -> str: ...  # "sync_token" | "updated_min"

    @property
    def page_size(self) -> int: ...

    @property
    def updated_min_overlap(self) -> int: ...  # seconds

    @property
    def updated_min_full_after(self) -> int: ...  # seconds: older cursors mean a full pass

    @property
    def history_days(self) -> int | None: ...  # full listings: timeMin = now - N days

    @property
    def event_types(self) -> tuple[str, ...] | None: ...  # eventTypes on every listing


LeaseKeeper = Callable[[], None]


class WrittenIds:
    """The ids a full listing of an empty calendar has written so far, with no false negatives.

    A listing can return an id twice (an event edited while it is paged); on a
    calendar that started empty only such a repeat has a stored row to load.
    Up to ``EXACT_LIMIT`` ids this is a set; past it, one bit per hash bucket
    (1 MiB, however many ids), where a set of every id costs ~12 MB at 100,000
    events. A false positive only adds that id to the page's one lookup of
    stored versions, which finds no row, so the item is planned as new: the
    outcome is the same, never a lost or doubled row.
    """

    EXACT_LIMIT = 20_000
    BUCKETS = 1 << 23

    __slots__ = ("_bits", "_ids", "_limit")

    def __init__(self, exact_limit: int | None = None) -> None:
        self._limit = self.EXACT_LIMIT if exact_limit is None else exact_limit
        self._ids: set[str] | None = set()
        self._bits = bytearray()

    @classmethod
    def _bit(cls, event_id: str) -> tuple[int, int]:
        """(byte index, bit mask) of ``event_id``'s bucket."""
        bucket = hash(event_id) & (cls.BUCKETS - 1)
        return bucket >> 3, 1 << (bucket & 7)

    def add_all(self, ids: Iterable[str]) -> None:
        if self._ids is not None:
            self._ids.update(ids)
            if len(self._ids) <= self._limit:
                return
            ids, self._ids = self._ids, None
            self._bits = bytearray(self.BUCKETS >> 3)
        for event_id in ids:
            index, bit = self._bit(event_id)
            self._bits[index] |= bit

    def __contains__(self, event_id: str) -> bool:
        if self._ids is not None:
            return event_id in self._ids
        index, bit = self._bit(event_id)
        return bool(self._bits[index] & bit)


@dataclass(slots=True)
class _Tally:
    """What a pass accumulates across its pages (mutable; frozen into the outcome)."""

    state: CalendarState
    mode: str = INCREMENTAL
    full_reason: str | None = None
    pages: int = 0
    items: int = 0
    counts: Counts = field(default_factory=Counts)
    seen: set[str] | None = None  # ids seen, for mark-and-sweep (full listings of stored rows)
    written: WrittenIds | None = None  # full listing of a calendar with no rows: nothing to sweep
    max_server_ms: int | None = None
    listing_updated_ms: int | None = None
    recent: set[int] = field(default_factory=set)  # distinct seconds of recent ``updated``s
    cursor: Cursor = field(default_factory=Cursor)

    @property
    def full(self) -> bool:
        """A full listing: authoritative for every row it could hold."""
        return self.seen is not None or self.written is not None

    def add(self, plan: PagePlan) -> None:
        self.counts += plan.counts

    def restart(self, mode: str, reason: str | None) -> None:
        """Begin another listing in the same pass (a full resync after a 410)."""
        self.mode, self.full_reason = mode, reason

    def committed(self) -> PageCommitted:
        return PageCommitted(calendar_id=self.state.calendar_id, account=self.state.account,
                             mode=self.mode, page=self.pages, items=self.items,
                             counts=self.counts)


class CalendarSync:
    """Runs passes for calendars with one thread's API handle."""

    def __init__(self, api: CalendarApi, settings: SyncSettings, *, history: int = 0,
                 occurrence_days: tuple[int, int] | None = None) -> None:
        self.api = api
        self.settings = settings
        self.history = history  # [store] history: versions kept per event (0: none)
        # [store] occurrences: (past days, future days) of the window, None: switched off
        self.occurrence_days = occurrence_days
        self.event_types = _event_types(settings)  # sorted, or None: every listing sends it
        self._fetcher: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the page-prefetch thread."""
        if self._fetcher is not None:
            self._fetcher.shutdown(wait=True)
            self._fetcher = None

    # -- public entry point -------------------------------------------------

    def sync(self, state: CalendarState, *, full: bool = False,
             keep_lease: LeaseKeeper | None = None,
             on_page_committed: PageCallback | None = None) -> PassOutcome:
        """One pass over ``state``'s calendar, choosing incremental, updatedMin or full.

        ``keep_lease`` runs after each committed page (it renews the lease and
        may raise to stop the pass); ``on_page_committed`` hears about each page.
        """
        started = time.monotonic()
        requests_before = self.api.requests
        run = _Run(self, state, keep_lease or (lambda: None), on_page_committed)
        run.window = self._occurrence_window(state.pk)
        tally = run.tally
        if self.settings.mode == "updated_min":
            run.updated_min_pass(full)
        elif full or not state.sync_token:
            run.full_pass("requested" if full else "first sync")
        elif state.event_types != run.event_types_json:
            # The token was made with another eventTypes set: Google calls reusing
            # it "undefined behaviour"; list everything again with the new set.
            calendars.forget_sync_token(state.pk)
            run.full_pass("event types changed")
        else:
            try:
                run.incremental_pass()
            except (SyncTokenInvalid, BadRequest) as exc:
                log.info("calendar %s: sync token unusable (%s); doing one full resync",
                         state.calendar_id, exc.reason or exc.status)
                calendars.forget_sync_token(state.pk)
                run.full_pass(f"sync token rejected ({exc.status})")
        return PassOutcome(
            calendar_id=state.calendar_id, account=state.account, mode=tally.mode,
            cursor=tally.cursor, full_reason=tally.full_reason, pages=tally.pages,
            items=tally.items, counts=tally.counts,
            requests=self.api.requests - requests_before,
            seconds=time.monotonic() - started, recent=len(tally.recent))

    def _occurrence_window(self, calendar_pk: int) -> occurrences.Window | None:
        """Roll the calendar's occurrence window to today (free when already there)."""
        if self.occurrence_days is None:
            occurrences.disable(calendar_pk)
            return None
        window = occurrences.window_for(utcnow(), *self.occurrence_days)
        occurrences.ensure_window(calendar_pk, window)
        return window

    # -- pages ----------------------------------------------------------------

    def pages(self, calendar_id: str, *, sync_token: str | None = None,
              updated_min: str | None = None, time_min: str | None = None,
              items_so_far: Callable[[], int] = lambda: 0) -> Iterator[dict[str, Any]]:
        """The listing's pages, fetching the next one while the caller writes this one.

        Raises :class:`PageLoop` on a repeated page token or when the listing
        runs past ``items / page_size + PAGE_SLACK`` pages.
        """
        if self._fetcher is None:
            self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        page_size = max(1, int(self.settings.page_size))
        event_types = list(self.event_types) if self.event_types else None

        def fetch(page_token: str | None) -> dict[str, Any]:
            return self.api.list_events(calendar_id, sync_token=sync_token,
                                        page_token=page_token, updated_min=updated_min,
                                        max_results=page_size, time_min=time_min,
                                        event_types=event_types)

        tokens: set[str] = set()  # page tokens handed out in this listing
        count = 0
        # The first page is fetched in this thread: a poll that finds one page (the
        # common no-change case) never pays for a hand-off to the prefetch thread.
        pending: Future[dict[str, Any]] | None = None
        try:
            page: dict[str, Any] | None = fetch(None)
            while page is not None:
                count += 1
                next_token = page.get("nextPageToken")
                if next_token:
                    on_page = len(page.get("items") or ())
                    _check_next(calendar_id, str(next_token), tokens, on_page, count,
                                items_so_far() + on_page, page_size)
                    tokens.add(str(next_token))
                pending = self._fetcher.submit(fetch, next_token) if next_token else None
                yield page
                page = pending.result() if pending is not None else None
                pending = None
        finally:
            if pending is not None and not pending.cancel():
                # The pass is already failing; the first error wins. Waiting keeps
                # the API handle out of two threads at once.
                with contextlib.suppress(Exception):
                    pending.result()


def _check_next(calendar_id: str, token: str, seen: set[str], on_page: int, pages: int,
                items: int, page_size: int) -> None:
    """Refuse to follow a page token that loops or a listing that never ends.

    An empty page may hand back a token already followed ("come back here"; the
    emulator's empty pages do, and Google sends empty pages too): only the page
    bound limits those. A page with items that points back to a token already
    followed is a loop.
    """
    if token in seen and on_page:
        raise PageLoop(f"calendar {calendar_id}: the listing repeated a page token after "
                       f"{pages} page(s); stopped (the server is misbehaving)")
    limit = items // page_size + PAGE_SLACK
    if pages >= limit:
        raise PageLoop(f"calendar {calendar_id}: the listing ran to {pages} pages for {items} "
                       f"item(s) at {page_size} per page; stopped (the server is misbehaving)")


class _Run:
    """One pass in progress: its listings, plans and commits."""

    def __init__(self, engine: CalendarSync, state: CalendarState, keep_lease: LeaseKeeper,
                 on_page: PageCallback | None) -> None:
        self.engine = engine
        self.state = state
        self.keep_lease = keep_lease
        self.on_page = on_page
        self.tally = _Tally(state)
        self.window: occurrences.Window | None = None  # the occurrence table's, when kept
        types = engine.event_types
        self.event_types_json = json.dumps(list(types)) if types else None

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return self.engine.pages(self.state.calendar_id, items_so_far=lambda: self.tally.items,
                                 **kwargs)

    def incremental_pass(self) -> None:
        self.tally.restart(INCREMENTAL, None)
        last: dict[str, Any] = {}
        for page in self._pages(sync_token=self.state.sync_token):
            self.apply(page)
            last = page
        token = _token_cursor(last)
        self.tally.cursor = Cursor(sync_token=token.sync_token,
                                   token_updated_at=token.token_updated_at,
                                   event_types=self.event_types_json)

    def full_pass(self, reason: str) -> None:
        tally = self.tally
        tally.restart(FULL, reason)
        if has_rows(self.state.pk):
            tally.seen, tally.written = set(), None
        else:
            tally.seen, tally.written = None, WrittenIds()
        days = getattr(self.engine.settings, "history_days", None)
        window = from_millis(now_ms() - int(days) * 86_400_000) if days else None
        types = self.engine.event_types
        last: dict[str, Any] = {}
        for page in self._pages(time_min=format_rfc3339(window) if window else None):
            self.apply(page)
            last = page
        if tally.seen is not None:
            listing_ms = tally.listing_updated_ms or now_ms()
            # Only rows this listing could have returned: inside the window, of a listed type.
            removed = sweep(self.state.pk, tally.seen, listing_ms, window_start=window,
                            event_types=types, occurrences=self.window)
            tally.counts += Counts(deleted=len(removed))
        token = _token_cursor(last)
        tally.cursor = Cursor(sync_token=token.sync_token,
                              token_updated_at=token.token_updated_at,
                              updated_min_cursor_ms=tally.max_server_ms,
                              last_full_sync=utcnow(), event_types=self.event_types_json)

    def updated_min_pass(self, full: bool) -> None:
        cursor = self.state.updated_min_cursor_ms
        too_old = cursor is None or (now_ms() - cursor
                                       > int(self.engine.settings.updated_min_full_after) * 1000)
        if full or too_old:
            self.full_pass("requested" if full else
                           ("first sync" if cursor is None else "cursor older than the limit"))
            return
        assert cursor is not None
        self.tally.restart(UPDATED_MIN, None)
        since = from_millis(cursor - int(self.engine.settings.updated_min_overlap) * 1000)
        try:
            for page in self._pages(updated_min=format_rfc3339(since)):
                self.apply(page)
        except UpdatedMinTooOld:
            self.full_pass("updatedMin too long ago (410)")
            return
        # The cursor moves only after every page is applied, with the pass's outcome.
        self.tally.cursor = Cursor(
            updated_min_cursor_ms=max(cursor, self.tally.max_server_ms or cursor))

    def apply(self, page: dict[str, Any]) -> None:
        """Plan one page against the stored versions, commit it, report it."""
        tally = self.tally
        tally.pages += 1
        items = page.get("items") or []
        tally.items += len(items)
        listing = parse_rfc3339(page.get("updated"))
        listing_ms = to_millis(listing) if listing else None
        if listing_ms is not None:
            tally.listing_updated_ms = max(tally.listing_updated_ms or 0, listing_ms)
            tally.max_server_ms = max(tally.max_server_ms or 0, listing_ms)
        if items:
            written = tally.written
            if written is not None:
                ids = page_ids(items)
                # Under our lease the calendar's only rows are the ones this listing
                # wrote: only an id repeated from an earlier page can have one.
                stored = load_versions(self.state.pk, [i for i in ids if i in written])
                raws: dict[str, str] = {}
            else:
                # One read per page: versions, plus raw JSON of the rows that change.
                stored, raws = load_page(self.state.pk, _page_etags(items))
            listing_at = Listing(listing_ms, now_ms())
            authoritative = tally.full
            plan = plan_page(stored, items, listing_at, authoritative, raws)
            if plan.missing_raw:  # a stored etag equal to another item's: rare
                raws.update(load_raw(self.state.pk, plan.missing_raw))
                plan = plan_page(stored, items, listing_at, authoritative, raws)
            if tally.seen is not None:
                tally.seen.update(plan.ids)
            elif tally.written is not None:
                tally.written.add_all(plan.ids)
            for event_id, problem in plan.problems:
                # Rate-limited per calendar: a hostile event re-listed on every
                # pass is logged once an hour, not once a pass (it is also counted).
                subject = f" event {event_id}" if event_id else ""
                BAD_EVENT_LOG.log(self.state.calendar_id, logging.WARNING, "calendar %s%s: %s",
                                  self.state.calendar_id, subject, problem)
            tally.add(plan)
            if authoritative:  # only a full listing's times make a first estimate
                since = (listing_ms or listing_at.received_ms) - int(LISTING_WINDOW * 1000)
                tally.recent.update(ms // 1000 for ms in plan.updated_ms if ms >= since)
            if plan.max_updated_ms is not None:
                tally.max_server_ms = max(tally.max_server_ms or 0, plan.max_updated_ms)
            write_page(self.state.pk, plan.writes, plan.changes, history=self.engine.history,
                       occurrences=self.window)
        self.keep_lease()
        if self.on_page is not None:
            self.on_page(tally.committed())


def _event_types(settings: SyncSettings) -> tuple[str, ...] | None:
    """The sorted ``eventTypes`` filter of the settings (None: every type)."""
    types = getattr(settings, "event_types", None)
    return tuple(sorted(set(types))) if types else None


def _page_etags(items: list[Any]) -> list[tuple[str, str]]:
    """(id, etag) of a page's valid items: what ``load_page`` compares stored etags with."""
    return [(item["id"], item["etag"] if isinstance(item.get("etag"), str) else "")
            for item in items if valid_item(item)]


def _token_cursor(page: dict[str, Any]) -> Cursor:
    token = page.get("nextSyncToken")
    if not token:
        # Google omits it only for orderBy listings, which we never send; keep
        # the mirror correct by forcing a full listing next time.
        log.warning("listing ended without nextSyncToken; next pass will be a full sync")
    return Cursor(sync_token=str(token) if token else None, token_updated_at=utcnow())


__all__ = ["PAGE_SLACK", "CalendarSync", "SyncSettings"]

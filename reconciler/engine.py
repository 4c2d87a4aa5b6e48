"""Sync one calendar: list pages, reconcile each, commit each, then commit the cursor.

The plan for a page comes from the pure rule in :mod:`reconciler.reconcile`; the
engine only moves data between the API and the store. Invariants:

* each page is applied in one transaction with its change rows;
* the new ``nextSyncToken`` (or ``updatedMin`` cursor) is stored only with the
  last page's writes, or, when that page wrote nothing, handed back in
  ``SyncResult.pending_updates`` for the caller's single UPDATE recording the
  pass; either way a crash anywhere replays from the old cursor, and replay is
  idempotent;
* a full listing ends with mark-and-sweep, and only when it completed;
* a 410 (or a 400 on a stored token) leads to exactly one full resync inside
  the same pass, never a loop;
* while page *n* is written, page *n+1* is already being fetched.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reconciler.clock import now_ms, utcnow
from reconciler.errors import BadRequest, SyncTokenInvalid, UpdatedMinTooOld
from reconciler.eventfields import derive, format_rfc3339, from_millis, parse_rfc3339, to_millis
from reconciler.google.client import CalendarApi
from reconciler.reconcile import Action, Version, decide, effective_updated
from reconciler.store.changes import ChangeRecord
from reconciler.store.events import (
    EventWrite,
    dump_raw,
    has_rows,
    load_versions,
    sweep,
    write_page,
)
from reconciler.store.models import Calendar

log = logging.getLogger("reconciler.engine")


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """The knobs of one pass, taken from ``[sync]``."""

    mode: str = "sync_token"
    page_size: int = 2500
    updated_min_overlap: int = 60
    updated_min_full_after: int = 21 * 86400


@dataclass(slots=True)
class SyncResult:
    """What one pass did, for the log line, ``status`` and metrics."""

    calendar_id: str
    mode: str = "incremental"
    pages: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped_stale: int = 0
    unchanged: int = 0
    requests: int = 0
    seconds: float = 0.0
    full_reason: str | None = None
    bad_events: int = 0
    # Calendar columns the caller must write when it records the pass (the
    # cursor of a last page that wrote no event): folded into its one UPDATE.
    pending_updates: dict[str, Any] | None = None

    def count(self, action: Action) -> None:
        kind = action.change_kind
        if kind == "created":
            self.created += 1
        elif kind == "updated":
            self.updated += 1
        elif kind == "deleted":
            self.deleted += 1
        elif action is Action.STALE:
            self.skipped_stale += 1
        elif action is Action.NOOP:
            self.unchanged += 1


@dataclass(slots=True)
class _PassState:
    """What a listing accumulates across its pages."""

    seen: set[str] | None = None  # event ids seen, for mark-and-sweep (full listings only)
    started_empty: bool = False  # full listing of a calendar with no rows: nothing to load or sweep
    max_server_ms: int | None = None
    listing_updated_ms: int | None = None


LeaseKeeper = Callable[[], None]


class CalendarSync:
    """Runs passes for calendars with one thread's API handle."""

    def __init__(self, api: CalendarApi, settings: SyncSettings,
                 keep_lease: LeaseKeeper | None = None) -> None:
        self.api = api
        self.settings = settings
        self.keep_lease = keep_lease or (lambda: None)
        self._fetcher: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the page-prefetch thread."""
        if self._fetcher is not None:
            self._fetcher.shutdown(wait=True)
            self._fetcher = None

    # -- public entry point -------------------------------------------------

    def sync(self, row: Calendar, *, force_full: bool = False) -> SyncResult:
        """One pass over ``row``'s calendar, choosing incremental, updatedMin or full."""
        started = time.monotonic()
        requests_before = self.api.requests
        result = SyncResult(calendar_id=row.calendar_id)
        try:
            if self.settings.mode == "updated_min":
                self._updated_min_pass(row, result, force_full)
            elif force_full or not row.sync_token:
                reason = "requested" if force_full else "first sync"
                self._full_pass(row, result, reason)
            else:
                try:
                    self._incremental_pass(row, result)
                except (SyncTokenInvalid, BadRequest) as exc:
                    log.info("calendar %s: sync token unusable (%s); doing one full resync",
                             row.calendar_id, exc.reason or exc.status)
                    Calendar.update(sync_token=None).where(Calendar.id == row.id).execute()
                    self._full_pass(row, result, f"sync token rejected ({exc.status})")
        finally:
            result.seconds = time.monotonic() - started
            result.requests = self.api.requests - requests_before
        return result

    # -- the three kinds of pass ---------------------------------------------

    def _incremental_pass(self, row: Calendar, result: SyncResult) -> None:
        result.mode = "incremental"
        state = _PassState()
        for page, is_last in self._pages(row.calendar_id, sync_token=row.sync_token):
            updates = self._token_updates(page) if is_last else None
            if updates is not None and not page.get("items"):
                # Nothing to write but the cursor: the caller stores it together
                # with the pass's outcome (a no-change poll costs one UPDATE).
                result.pages += 1
                result.pending_updates = updates
                continue
            self._apply_page(row, page, state, result, updates)

    def _full_pass(self, row: Calendar, result: SyncResult, reason: str) -> None:
        result.mode = "full"
        result.full_reason = reason
        state = _PassState(seen=set(), started_empty=not has_rows(row.id))
        last: dict[str, Any] = {}
        for page, _is_last in self._pages(row.calendar_id):
            self._apply_page(row, page, state, result, None)
            last = page
        updates = self._token_updates(last)
        updates["last_full_sync"] = utcnow()
        if state.max_server_ms is not None:
            updates["updated_min_cursor_ms"] = state.max_server_ms
        if state.started_empty:
            # Nothing was stored before this listing, so nothing can be swept:
            # the cursor goes into the caller's one UPDATE that records the pass.
            result.pending_updates = updates
        else:
            self._sweep(row, state, result, updates)

    def _updated_min_pass(self, row: Calendar, result: SyncResult, force_full: bool) -> None:
        cursor = row.updated_min_cursor_ms
        too_old = cursor is None or (
            now_ms() - cursor > self.settings.updated_min_full_after * 1000)
        if force_full or too_old:
            self._full_pass(row, result, "requested" if force_full else
                            ("first sync" if cursor is None else "cursor older than the limit"))
            return
        assert cursor is not None
        result.mode = "updated_min"
        since = from_millis(cursor - self.settings.updated_min_overlap * 1000)
        state = _PassState()
        try:
            for page, _is_last in self._pages(row.calendar_id,
                                              updated_min=format_rfc3339(since)):
                self._apply_page(row, page, state, result, None)
        except UpdatedMinTooOld:
            self._full_pass(row, result, "updatedMin too long ago (410)")
            return
        # The cursor moves only after every page is applied, with the pass's outcome.
        result.pending_updates = {
            "updated_min_cursor_ms": max(cursor, state.max_server_ms or cursor)}

    # -- pages ----------------------------------------------------------------

    def _pages(self, calendar_id: str, *, sync_token: str | None = None,
               updated_min: str | None = None) -> Iterator[tuple[dict[str, Any], bool]]:
        """The listing's pages, fetching the next one while the caller writes this one."""
        if self._fetcher is None:
            self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")

        def fetch(page_token: str | None) -> dict[str, Any]:
            return self.api.list_events(calendar_id, sync_token=sync_token,
                                        page_token=page_token, updated_min=updated_min,
                                        max_results=self.settings.page_size)

        # The first page is fetched in this thread: a poll that finds one page (the
        # common no-change case) never pays for a hand-off to the prefetch thread.
        pending: Future[dict[str, Any]] | None = None
        try:
            page: dict[str, Any] | None = fetch(None)
            while page is not None:
                next_token = page.get("nextPageToken")
                pending = self._fetcher.submit(fetch, next_token) if next_token else None
                yield page, pending is None
                self.keep_lease()
                page = pending.result() if pending is not None else None
                pending = None
        finally:
            if pending is not None and not pending.cancel():
                # The pass is already failing; the first error wins. Waiting keeps
                # the API handle out of two threads at once.
                with contextlib.suppress(Exception):
                    pending.result()

    @staticmethod
    def _token_updates(page: dict[str, Any]) -> dict[str, Any]:
        token = page.get("nextSyncToken")
        if not token:
            # Google omits it only for orderBy listings, which we never send; keep
            # the mirror correct by forcing a full listing next time.
            log.warning("listing ended without nextSyncToken; next pass will be a full sync")
        return {"sync_token": token or None, "token_updated_at": utcnow()}

    def _apply_page(self, row: Calendar, page: dict[str, Any], state: _PassState,
                    result: SyncResult, calendar_updates: dict[str, Any] | None) -> None:
        result.pages += 1
        received_ms = now_ms()
        listing = parse_rfc3339(page.get("updated"))
        listing_ms = to_millis(listing) if listing else None
        if listing_ms is not None:
            state.listing_updated_ms = max(state.listing_updated_ms or 0, listing_ms)
            state.max_server_ms = max(state.max_server_ms or 0, listing_ms)
        parsed = []
        for item in page.get("items") or []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                result.bad_events += 1
                log.warning("calendar %s: skipped an item without an id", row.calendar_id)
                continue
            parsed.append((item, derive(item)))
        ids = [fields.event_id for _, fields in parsed]
        full_listing = state.seen is not None
        if state.started_empty:
            # Under our lease the calendar's only rows are the ones this listing
            # wrote: only an id repeated from an earlier page can have one.
            assert state.seen is not None
            stored: dict[str, Version] = load_versions(row.id, [i for i in ids if i in state.seen])
        else:
            stored = load_versions(row.id, ids)
        if state.seen is not None:
            state.seen.update(ids)
        writes: dict[str, EventWrite] = {}
        changes: list[ChangeRecord] = []
        for item, fields in parsed:
            effective = effective_updated(fields.updated_ms, listing_ms, received_ms)
            new = fields.version(effective)
            action = decide(stored.get(fields.event_id), new, authoritative=full_listing)
            result.count(action)
            if fields.updated_ms is not None:
                state.max_server_ms = max(state.max_server_ms or 0, fields.updated_ms)
            if not action.writes:
                continue
            if fields.problems:
                result.bad_events += 1
                log.warning("calendar %s event %s: stored with empty derived columns: %s",
                            row.calendar_id, fields.event_id, "; ".join(fields.problems))
            stored[fields.event_id] = new
            writes[fields.event_id] = EventWrite(fields, effective, dump_raw(item))
            if action.change_kind:
                changes.append(ChangeRecord(fields.event_id, action.change_kind, fields.etag))
        write_page(row.id, list(writes.values()), changes, calendar_updates)

    def _sweep(self, row: Calendar, state: _PassState, result: SyncResult,
               updates: dict[str, Any]) -> None:
        assert state.seen is not None
        listing_ms = state.listing_updated_ms or now_ms()
        removed = sweep(row.id, state.seen, listing_ms, updates, started_empty=state.started_empty)
        result.deleted += len(removed)


def describe(result: SyncResult) -> str:
    """The one INFO line logged per pass."""
    extra = f" ({result.full_reason})" if result.full_reason else ""
    return (f"calendar {result.calendar_id}: {result.mode}{extra}, {result.pages} page(s), "
            f"{result.created} created, {result.updated} updated, {result.deleted} deleted, "
            f"{result.requests} request(s), {result.seconds:.2f}s")


__all__ = ["CalendarSync", "SyncResult", "SyncSettings", "describe"]

"""Plan one page: from stored versions and a page's items to the rows to write.

Pure (no I/O, no clock): ``plan_page`` folds the reconcile rule
(:func:`reconciler.reconcile.decide`) over a page's items, the way vdirsyncer's
``_get_actions`` plans a sync before touching either side. The store applies
the plan in one transaction (``reconciler.store.events.apply_page``), so page
behaviour is property-tested without HTTP or a database.

Invariants:

* the plan's rows and change rows are exactly what applying the items one by
  one, in page order, with :func:`decide` would write (an id repeated within a
  page is decided against the version planned before it, and written once);
* an item without a string id is counted as bad and otherwise ignored;
* an item that cannot be stored at all (nested deeper than ``MAX_DEPTH``) is
  counted as bad, its id still counts as seen (so a full listing does not
  tombstone the version stored before), and nothing is written for it; an
  item whose derived values do not fit is stored with those columns adjusted
  (see :mod:`reconciler.eventfields`) and counted as bad;
* planning the same page again against the planned result writes nothing;
* with ``stored_raw`` given, every ``updated`` change row carries the changed
  fields and their before/after values (:mod:`reconciler.diff`), diffed
  against the version it replaced: the stored raw JSON, or the item planned
  before it on the same page; an ``updated`` id whose stored raw JSON is not in
  ``stored_raw`` is listed in ``missing_raw`` (plan again with it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from reconciler.diff import raw_diff
from reconciler.eventfields import MAX_DEPTH, derive, stored_id
from reconciler.outcome import COUNTERS, Counts
from reconciler.reconcile import Version, decide, effective_updated
from reconciler.store.changes import ChangeRecord
from reconciler.store.events import EventWrite, dump_raw


@dataclass(frozen=True, slots=True)
class Listing:
    """The clock readings a page's stubs are dated by (see ``effective_updated``)."""

    updated_ms: int | None  # the listing envelope's ``updated``
    received_ms: int  # when the page arrived


@dataclass(slots=True)
class PagePlan:
    """What one page changes: rows to upsert, change rows, and the tally."""

    writes: list[EventWrite] = field(default_factory=list)
    changes: list[ChangeRecord] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # every valid id on the page, in order
    counts: Counts = field(default_factory=Counts)
    max_updated_ms: int | None = None  # newest ``updated`` an item carried
    updated_ms: list[int] = field(default_factory=list)  # every item's ``updated`` (schedule)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (event id or "", why)
    missing_raw: list[str] = field(default_factory=list)  # updated ids without stored raw JSON



def valid_item(item: Any) -> bool:
    """Whether a page item can be mirrored at all: an object with a non-empty string id."""
    return isinstance(item, dict) and isinstance(item.get("id"), str) and bool(item["id"])


def page_ids(items: Iterable[Any]) -> list[str]:
    """The ids of a page's valid items, in order (what to load stored versions for)."""
    return [item["id"] for item in items if valid_item(item)]


def _diff_change(change: ChangeRecord, old_raw: str, new_raw: str) -> ChangeRecord:
    try:
        fields, diff = raw_diff(old_raw, new_raw)
    except (ValueError, msgspec.DecodeError, RecursionError):
        # JSON the fast scanner refuses (a lone surrogate escape): the change is
        # still recorded, without its field diff; never a poison pill.
        return change
    return ChangeRecord(change.event_id, change.kind, change.etag,
                        orjson.dumps(fields).decode(), diff)


def plan_page(stored: Mapping[str, Version], items: Sequence[Any], listing: Listing,
              authoritative: bool, stored_raw: Mapping[str, str] | None = None) -> PagePlan:
    """Decide every item of a page against ``stored``; nothing is written here.

    ``authoritative`` marks a full listing (Google's current state wins ties,
    see :func:`reconciler.reconcile.is_stale`). ``stored_raw`` (raw JSON by
    event id, of the stored rows that may change) turns on field diffs.
    """
    plan = PagePlan()
    tally = dict.fromkeys(COUNTERS, 0)  # summed here, frozen into ``plan.counts`` at the end
    current: dict[str, Version] = dict(stored)
    writes: dict[str, EventWrite] = {}
    planned: dict[str, str] = {}  # raw JSON last planned for an id on this page
    for item in items:
        if not valid_item(item):
            tally["bad_events"] += 1
            plan.problems.append(("", "skipped an item without an id"))
            continue
        try:
            fields = derive(item)
        except RecursionError:  # a value nested too deep to even look at
            _refuse(plan, tally, item["id"])
            continue
        plan.ids.append(fields.event_id)
        effective = effective_updated(fields.updated_ms, listing.updated_ms, listing.received_ms)
        new = fields.version(effective)
        action = decide(current.get(fields.event_id), new, authoritative=authoritative)
        raw = dump_raw(item) if action.writes else None
        if action.writes and raw is None:
            _refuse(plan, tally, fields.event_id, seen=True)
            continue
        counter = Counts.kind_of(action)
        if counter is not None:
            tally[counter] += 1
        if fields.updated_ms is not None:
            plan.max_updated_ms = max(plan.max_updated_ms or 0, fields.updated_ms)
            plan.updated_ms.append(fields.updated_ms)
        if raw is None:
            continue
        if fields.problems:
            tally["bad_events"] += 1
            plan.problems.append((_shown(fields.event_id), "stored with adjusted derived columns: "
                                  + "; ".join(fields.problems)))
        current[fields.event_id] = new
        writes[fields.event_id] = EventWrite(fields, effective, raw)
        if action.change_kind:
            change = ChangeRecord(stored_id(fields.event_id), action.change_kind, fields.etag)
            if stored_raw is not None and action.change_kind == "updated":
                before = planned.get(fields.event_id) or stored_raw.get(fields.event_id)
                if before is not None:
                    change = _diff_change(change, before, raw)
                else:
                    plan.missing_raw.append(fields.event_id)
            plan.changes.append(change)
        if stored_raw is not None:
            planned[fields.event_id] = raw
    plan.writes = list(writes.values())
    plan.counts = Counts.of(tally)
    return plan


def _shown(event_id: str) -> str:
    """An id as a log line shows it: clean, at most 120 characters."""
    shown = stored_id(event_id)
    return shown if len(shown) <= 120 else f"{shown[:117]}..."


def _refuse(plan: PagePlan, tally: dict[str, int], event_id: str, *,
            seen: bool = False) -> None:
    """Count an item that cannot be stored; the rest of the page goes on."""
    if not seen:
        plan.ids.append(event_id)
    tally["bad_events"] += 1
    plan.problems.append((_shown(event_id), f"refused: nested deeper than {MAX_DEPTH} "
                          "levels; the rest of the calendar is mirrored"))


__all__ = ["Listing", "PagePlan", "page_ids", "plan_page", "valid_item"]

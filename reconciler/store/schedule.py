"""The adaptive schedule's rows: each calendar's change-rate estimate and planned interval.

The estimate is written by :func:`reconciler.store.calendars.record_success`
in the UPDATE that records the pass (:func:`observed` computes it), so a
no-change poll costs no extra statement. The replanning step of ``run``
reads the fleet in one SELECT (:func:`fleet_estimates`) and writes the
intervals that moved in one UPDATE per chunk (:func:`write_planned_intervals`).
Every public function maps database errors into ``StoreError``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import peewee

from reconciler.outcome import CalendarState, PassOutcome
from reconciler.schedule.estimate import Estimate, changed_items, from_listing, observe
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Calendar

WRITE_CHUNK = 500  # calendars per UPDATE ... CASE
REPLAN_TOLERANCE = 0.02  # relative: a planned interval that moved less is not rewritten


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One calendar as the replanning step sees it."""

    pk: int
    calendar_id: str
    rate: float  # changes per second
    weight: float  # seconds of (decayed) observation behind ``rate``; 0: never measured
    planned_interval: float | None

    @property
    def observed(self) -> bool:
        """False while no incremental pass has measured the calendar."""
        return self.weight > 0


def observed(calendar: CalendarState, outcome: PassOutcome,
             now: dt.datetime) -> Estimate | None:
    """The estimate after this pass, or None when the pass is no observation.

    A full listing counts no changes (it returns everything, not what
    changed), and a first pass has no previous success to measure time from;
    but a calendar's first full listing, while it has no estimate yet, gives
    its first one from the events' ``updated`` times (``from_listing``).
    """
    changed = changed_items(outcome.created, outcome.updated, outcome.deleted, outcome.mode)
    if changed is None or calendar.last_success is None:
        if outcome.mode == "full" and not calendar.rate_weight:
            return from_listing(outcome.recent, outcome.items)
        return None
    elapsed = (now - calendar.last_success).total_seconds()
    return observe(Estimate(calendar.change_rate, calendar.rate_weight), changed, elapsed)


@map_db_errors()
def fleet_estimates() -> list[FleetRow]:
    """Every calendar that is polled (not removed), with its estimate, in one query."""
    query = (Calendar.select(Calendar.id, Calendar.calendar_id, Calendar.change_rate,
                             Calendar.rate_weight, Calendar.planned_interval)
             .where(~Calendar.removed).order_by(Calendar.id))
    return [FleetRow(int(pk), str(cid), float(rate or 0.0), float(weight or 0.0), planned)
            for pk, cid, rate, weight, planned in query.tuples()]


def moved(rows: list[FleetRow], plan: Mapping[int, float | None]) -> dict[int, float | None]:
    """The planned intervals that differ from the stored ones by more than the tolerance."""
    stored = {row.pk: row.planned_interval for row in rows}
    changes: dict[int, float | None] = {}
    for pk, interval in plan.items():
        before = stored.get(pk)
        if interval is None or before is None:
            if interval != before:
                changes[pk] = interval
        elif abs(interval - before) > REPLAN_TOLERANCE * before:
            changes[pk] = interval
    return changes


@map_db_errors()
def write_planned_intervals(plan: Mapping[int, float | None]) -> int:
    """Store planned intervals (None: back to the configured one); one UPDATE per chunk."""
    items = list(plan.items())
    for start in range(0, len(items), WRITE_CHUNK):
        chunk = items[start:start + WRITE_CHUNK]
        case = peewee.Case(Calendar.id, [(pk, interval) for pk, interval in chunk],
                           Calendar.planned_interval)
        (Calendar.update({Calendar.planned_interval: case})
         .where(Calendar.id.in_([pk for pk, _ in chunk])).execute())
    return len(items)


@map_db_errors()
def write_next_due(dues: Mapping[int, dt.datetime]) -> int:
    """Store calendars' next due times (a replanning moved them); one UPDATE per chunk."""
    items = list(dues.items())
    for start in range(0, len(items), WRITE_CHUNK):
        chunk = items[start:start + WRITE_CHUNK]
        case = peewee.Case(Calendar.id, [(pk, due) for pk, due in chunk], Calendar.next_due)
        (Calendar.update({Calendar.next_due: case})
         .where(Calendar.id.in_([pk for pk, _ in chunk])).execute())
    return len(items)


@map_db_errors()
def clear_planned_intervals() -> None:
    """Forget every plan (``schedule = "fixed"``: the configured intervals rule)."""
    Calendar.update(planned_interval=None).where(Calendar.planned_interval.is_null(False)).execute()

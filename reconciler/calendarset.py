"""The calendar set: which calendars to mirror now, and which account syncs each.

Why: the set has three sources (the config's explicit calendars, ``primary``
resolved to the account's own id, and ``discover = true`` accounts'
``calendarList``) and one rule, :func:`assign`: a calendar id is mirrored once,
by the first account in config order that sees it. Each candidate is a typed
:class:`Candidate`, never an anonymous tuple.

Invariants: an account that cannot be read is a :class:`~reconciler.report.Failure`
for the account and never stops the others (its last known calendars stay);
a parked account (``needs_reauth``) is not asked again before its planned
retry; a calendar no longer configured or listed is marked removed, its rows
kept; one query reads every known row instead of one per calendar.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from reconciler import discovery
from reconciler.errors import AccessDenied, BadRequest, CalendarNotFound, ReconcilerError
from reconciler.handles import AccountHandles
from reconciler.report import Failure, failure_of
from reconciler.store import calendars
from reconciler.store.records import CalendarRow as Calendar

log = logging.getLogger("reconciler.service")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One account's claim to sync one calendar, as the config or its calendarList says."""

    calendar_id: str
    account: str
    interval: int | None  # seconds; None: the default
    source: str  # "config" | "discover"
    summary: str | None = None


def assign(candidates: Iterable[Candidate]) -> dict[str, Candidate]:
    """Map each calendar id to the first candidate that sees it.

    ``candidates`` must be in config order: accounts in file order, each
    account's explicit calendars before its discovered ones.
    """
    chosen: dict[str, Candidate] = {}
    for candidate in candidates:
        chosen.setdefault(candidate.calendar_id, candidate)
    return chosen


def resolve_calendars(handles: AccountHandles) -> tuple[list[Calendar], list[Failure]]:
    """The calendars to mirror now, each assigned to one account; removed ones marked."""
    failures: list[Failure] = []
    candidates: list[Candidate] = []
    for account in handles.config.accounts:
        calendars.ensure_account(account.name)
        for entry in account.calendars:
            calendar_id = entry.id
            if calendar_id == "primary":
                try:
                    calendar_id = primary_id(handles, account.name)
                except ReconcilerError as exc:
                    handles.refused(account.name, exc)
                    failures.append(failure_of(f"account {account.name}", exc, account.name))
                    continue
            candidates.append(Candidate(calendar_id, account.name,
                                        entry.interval or account.interval, "config"))
        if not account.discover:
            continue
        if handles.parked(account.name):
            # needs_reauth: do not ask Google again before the planned retry time.
            visible = discovery.visible_calendars(account.name)
        else:
            try:
                visible = discovery.read_calendar_list(handles.api(account.name), account.name)
            except ReconcilerError as exc:
                handles.refused(account.name, exc)
                failures.append(failure_of(f"account {account.name} (calendarList)", exc,
                                           account.name))
                visible = discovery.visible_calendars(account.name)
        candidates += [Candidate(item.calendar_id, account.name, account.interval, "discover",
                                 item.summary) for item in visible]
    return _store(assign(candidates)), failures


def _store(chosen: dict[str, Candidate]) -> list[Calendar]:
    """Ensure a row per chosen calendar (reassigned when another account now syncs it);
    mark the rows nobody chose any more as removed."""
    existing = {row.calendar_key: row for row in calendars.all_calendars()}
    rows: list[Calendar] = []
    for calendar_id, chosen_by in chosen.items():
        row = calendars.ensure_calendar(calendar_id, chosen_by.account, source=chosen_by.source,
                                        interval=chosen_by.interval, summary=chosen_by.summary,
                                        known=existing.get(calendars.key_of(calendar_id)))
        if row.account != chosen_by.account:
            log.info("calendar %s: now synced by account %s (was %s)", calendar_id,
                     chosen_by.account, row.account)
            calendars.reassign(row.id, chosen_by.account)
            row = replace(row, account=chosen_by.account)
        rows.append(row)
    wanted = {row.id for row in rows}
    for row in existing.values():
        if not row.removed and row.id not in wanted:
            log.info("calendar %s: no longer configured or listed; stopped polling, rows kept",
                     row.calendar_id)
            calendars.mark_removed(row.id)
    return rows


def primary_id(handles: AccountHandles, account: str) -> str:
    """The id ``primary`` stands for in ``account`` (asked once, then stored)."""
    row = calendars.ensure_account(account)
    if row.primary_calendar_id:
        return str(row.primary_calendar_id)
    try:
        resource = handles.api(account).get_calendar("primary")
    except (CalendarNotFound, AccessDenied, BadRequest) as exc:
        # A server without calendars.get (some emulators): mirror it as "primary".
        log.warning("account %s: cannot resolve 'primary' (%s); mirroring it as 'primary'",
                    account, exc)
        resource = {"id": "primary"}
    calendar_id = str(resource.get("id") or "primary")
    calendars.set_primary_calendar(account, calendar_id)
    return calendar_id


__all__ = ["Candidate", "assign", "primary_id", "resolve_calendars"]

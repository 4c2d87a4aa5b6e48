"""What each account can see (``account_calendar``) and its calendarList sync state.

Serves :mod:`reconciler.discovery`, which does the HTTP: it asks here for the
stored calendarList token, lists with it (no connection held while Google
answers), then hands the entries back in one call that applies them in one
transaction. Every function maps database errors and returns plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.store.db import write_transaction
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Account, AccountCalendar, database_proxy, key_of


@map_db_errors()
def calendar_list_state(account: str) -> tuple[str | None, str | None]:
    """The account's stored calendarList sync token and primary calendar id (the account
    row is made on first sight)."""
    row, _ = Account.get_or_create(name=account)
    return row.calendar_list_sync_token or None, row.primary_calendar_id


@map_db_errors()
def apply_calendar_list(account: str, entries: Iterable[Mapping[str, Any]],
                        new_token: str | None, full: bool, primary_id: str | None) -> None:
    """Record a calendarList read in one transaction: what the account sees, its primary
    calendar (``primary_id`` unless an entry says otherwise), the new token. A ``full``
    listing first hides everything it knew."""
    with write_transaction(database_proxy.obj):
        if full:
            AccountCalendar.update(visible=False).where(AccountCalendar.account == account).execute()
        for entry in entries:
            calendar_id = str(entry.get("id", ""))
            if not calendar_id:
                continue
            visible = not entry.get("deleted", False)
            if entry.get("primary") and visible:
                primary_id = calendar_id
            _upsert_visibility(account, calendar_id, visible, entry.get("summaryOverride")
                               or entry.get("summary"), entry.get("accessRole"),
                               bool(entry.get("primary")))
        Account.update(calendar_list_sync_token=new_token, primary_calendar_id=primary_id).where(
            Account.name == account).execute()


def _upsert_visibility(account: str, calendar_id: str, visible: bool, summary: object,
                       access_role: object, primary: bool) -> None:
    key = key_of(calendar_id)
    values = {"visible": visible, "summary": summary if isinstance(summary, str) else None,
              "access_role": access_role if isinstance(access_role, str) else None,
              "primary": primary}
    updated = AccountCalendar.update(values).where(
        (AccountCalendar.account == account) & (AccountCalendar.calendar_key == key)).execute()
    if not updated:
        AccountCalendar.create(account=account, calendar_id=calendar_id, calendar_key=key,
                               **values)


@map_db_errors()
def visible_calendars(account: str) -> list[tuple[str, str | None]]:
    """(calendar id, summary) of what the account saw on its last calendarList read."""
    query = (AccountCalendar.select(AccountCalendar.calendar_id, AccountCalendar.summary)
             .where((AccountCalendar.account == account) & AccountCalendar.visible)
             .order_by(AccountCalendar.id))
    return [(str(cid), summary) for cid, summary in query.tuples()]


@map_db_errors()
def mark_lost(account: str, calendar_id: str) -> None:
    """The account got 404 for a calendar it synced: it no longer sees it."""
    AccountCalendar.update(visible=False).where(
        (AccountCalendar.account == account)
        & (AccountCalendar.calendar_key == key_of(calendar_id))).execute()


@map_db_errors()
def primary_calendar_ids() -> list[str]:
    """The resolved ``primary`` calendar id of every account that has one (``--calendar primary``)."""
    query = Account.select(Account.primary_calendar_id).where(
        Account.primary_calendar_id.is_null(False))
    return [str(cid) for (cid,) in query.tuples()]


@map_db_errors()
def seen_by_an_account(calendar_ids: list[str]) -> set[str]:
    """Which of ``calendar_ids`` some account's calendarList showed (they exist)."""
    if not calendar_ids:
        return set()
    query = AccountCalendar.select(AccountCalendar.calendar_id).where(
        AccountCalendar.calendar_key.in_([key_of(cid) for cid in calendar_ids]))
    return {str(cid) for (cid,) in query.tuples()} & set(calendar_ids)


__all__ = ["apply_calendar_list", "calendar_list_state", "mark_lost", "primary_calendar_ids",
           "seen_by_an_account", "visible_calendars"]

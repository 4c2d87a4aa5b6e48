"""Follow an account's ``calendarList`` and decide which account syncs each calendar.

``discover = true`` accounts read their calendar list every pass, incrementally
with the list's own sync token and ``showHidden=true``; a 410 restarts it with a
full listing. What each account can see is kept in ``account_calendar``; from
that, :func:`assign` picks for every calendar the first account in config order
that sees it, so a shared calendar is mirrored once and moves to the next
account when the syncing one loses access. A calendarList that repeats a page
token (or never ends) stops with ``PageLoop``; database errors leave as
``StoreError`` (``map_db_errors``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from reconciler.errors import BadRequest, PageLoop, SyncTokenInvalid
from reconciler.google.client import CalendarApi
from reconciler.store.db import write_transaction
from reconciler.store.dberrors import map_db_errors
from reconciler.store.models import Account, AccountCalendar, database_proxy, key_of

log = logging.getLogger("reconciler.discovery")

MAX_LIST_PAGES = 1000  # 250 entries a page: far beyond any account's calendar list


@dataclass(frozen=True, slots=True)
class Visible:
    """A calendar an account can see."""

    calendar_id: str
    summary: str | None = None


@map_db_errors()
def read_calendar_list(api: CalendarApi, account: str) -> list[Visible]:
    """Update the account's visible calendars from ``calendarList``; return them all.

    Incremental when a token is stored; hidden calendars count as visible
    (they are still shared with the account), deleted entries do not.
    """
    row, _ = Account.get_or_create(name=account)
    token = row.calendar_list_sync_token
    try:
        entries, new_token, full = _list_all(api, token)
    except (SyncTokenInvalid, BadRequest):
        if token is None:
            raise
        # 410, or a 400 on a request carrying a stored token: the token is
        # unusable; list everything once instead.
        log.info("account %s: calendarList sync token rejected; listing again", account)
        entries, new_token, full = _list_all(api, None)
    with write_transaction(database_proxy.obj):
        if full:
            AccountCalendar.update(visible=False).where(AccountCalendar.account == account).execute()
        primary_id = row.primary_calendar_id
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
    return visible_calendars(account)


def _list_all(api: CalendarApi, token: str | None) -> tuple[list[dict], str | None, bool]:
    entries: list[dict] = []
    page_token: str | None = None
    followed: set[str] = set()
    while True:
        page = api.list_calendar_list(sync_token=token, page_token=page_token)
        items = page.get("items") or []
        entries.extend(item for item in items if isinstance(item, dict))
        page_token = page.get("nextPageToken")
        if not page_token:
            return entries, page.get("nextSyncToken"), token is None
        if (page_token in followed and items) or len(followed) > MAX_LIST_PAGES:
            raise PageLoop(f"calendarList repeated a page token or ran past {MAX_LIST_PAGES} "
                           "pages; stopped (the server is misbehaving)")
        followed.add(page_token)


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
def visible_calendars(account: str) -> list[Visible]:
    """The calendars the account saw on its last successful calendarList read."""
    query = (AccountCalendar.select(AccountCalendar.calendar_id, AccountCalendar.summary)
             .where((AccountCalendar.account == account) & AccountCalendar.visible)
             .order_by(AccountCalendar.id))
    return [Visible(cid, summary) for cid, summary in query.tuples()]


@map_db_errors()
def mark_lost(account: str, calendar_id: str) -> None:
    """The account got 404 for a calendar it synced: it no longer sees it."""
    AccountCalendar.update(visible=False).where(
        (AccountCalendar.account == account)
        & (AccountCalendar.calendar_key == key_of(calendar_id))).execute()


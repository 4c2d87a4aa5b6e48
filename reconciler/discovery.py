"""Follow an account's ``calendarList`` and decide which account syncs each calendar.

``discover = true`` accounts read their calendar list every pass, incrementally
with the list's own sync token and ``showHidden=true``; a 410 restarts it with a
full listing. What each account can see is kept in ``account_calendar``; from
that, :func:`assign` picks for every calendar the first account in config order
that sees it, so a shared calendar is mirrored once and moves to the next
account when the syncing one loses access. A calendarList that repeats a page
token (or never ends) stops with ``PageLoop``; the rows live in
:mod:`reconciler.store.accounts` (its errors leave as ``StoreError``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from reconciler.errors import BadRequest, PageLoop, SyncTokenInvalid
from reconciler.google.client import CalendarApi
from reconciler.store import accounts

log = logging.getLogger("reconciler.discovery")

MAX_LIST_PAGES = 1000  # 250 entries a page: far beyond any account's calendar list


@dataclass(frozen=True, slots=True)
class Visible:
    """A calendar an account can see."""

    calendar_id: str
    summary: str | None = None


def read_calendar_list(api: CalendarApi, account: str) -> list[Visible]:
    """Update the account's visible calendars from ``calendarList``; return them all.

    Incremental when a token is stored; hidden calendars count as visible
    (they are still shared with the account), deleted entries do not. No
    database connection is held while Google answers.
    """
    token, primary_id = accounts.calendar_list_state(account)
    try:
        entries, new_token, full = _list_all(api, token)
    except (SyncTokenInvalid, BadRequest):
        if token is None:
            raise
        # 410, or a 400 on a request carrying a stored token: the token is
        # unusable; list everything once instead.
        log.info("account %s: calendarList sync token rejected; listing again", account)
        entries, new_token, full = _list_all(api, None)
    accounts.apply_calendar_list(account, entries, new_token, full, primary_id)
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


def visible_calendars(account: str) -> list[Visible]:
    """The calendars the account saw on its last successful calendarList read."""
    return [Visible(cid, summary) for cid, summary in accounts.visible_calendars(account)]


def mark_lost(account: str, calendar_id: str) -> None:
    """The account got 404 for a calendar it synced: it no longer sees it."""
    accounts.mark_lost(account, calendar_id)


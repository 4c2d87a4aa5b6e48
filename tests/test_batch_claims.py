"""Batch claims: one conditional UPDATE for many calendars keeps the lease rules.

A batch takes exactly the leases a single claim would take (free, expired or
already ours), never one a live owner holds, and reads back only what it got.
"""

from __future__ import annotations

import datetime as dt

import peewee
from freezegun import freeze_time

from reconciler.outcome import Cursor, PassOutcome
from reconciler.store import calendars, leases
from reconciler.store.models import Calendar

ME, OTHER = "otherhost:1:aa", "otherhost:2:bb"


def test_a_batch_takes_free_expired_and_own_leases_only(store: peewee.Database) -> None:
    free, mine, held, expiring = (calendars.ensure_calendar(f"c{n}@example.com", "ops")
                                  for n in range(4))
    with freeze_time("2026-01-01 12:00:00"):
        assert leases.claim(mine.id, ME, 60)
        assert leases.claim(held.id, OTHER, 3600)
        assert leases.claim(expiring.id, OTHER, 60)
    with freeze_time("2026-01-01 12:05:00"):  # OTHER's 60 s lease has expired
        got = leases.claim_many([free.id, mine.id, held.id, expiring.id, 999_999], ME, 60)
        assert set(got) == {free.id, mine.id, expiring.id}
        assert {state.calendar_id for state in got.values()} == {
            "c0@example.com", "c1@example.com", "c3@example.com"}
        # A batch claim records when the lease began, as a single claim does (status shows it).
        since = Calendar.get_by_id(free.id).lease_since
        assert since is not None and since.replace(tzinfo=None) == dt.datetime(2026, 1, 1, 12, 5)
        assert leases.holder_of(held.id) == OTHER
        # Another owner's batch now gets nothing that was taken.
        assert leases.claim_many([free.id, mine.id, held.id, expiring.id], "h:3:cc", 60) == {}
        assert not leases.claim(free.id, OTHER, 60)
        leases.release(free.id, ME)
        assert set(leases.claim_many([free.id], OTHER, 60)) == {free.id}


def test_a_batch_larger_than_one_statement_is_split(store: peewee.Database) -> None:
    pks = [calendars.ensure_calendar(f"b{n}@example.com", "ops").id
           for n in range(leases.BATCH_LIMIT + 3)]
    got = leases.claim_many(pks, ME, 60)
    assert set(got) == set(pks)
    assert all(leases.holder_of(pk) == ME for pk in pks[-3:])


def test_record_success_stores_the_cursor_and_releases_only_its_own_lease(
        store: peewee.Database) -> None:
    """The cached record_success statement, reused across calls and column sets, on every database."""
    ours, theirs = (calendars.ensure_calendar(f"r{n}@example.com", "ops") for n in range(2))
    with freeze_time("2026-01-01 12:00:00"):
        got = leases.claim_many([ours.id, theirs.id], ME, 60)
        leases.release(theirs.id, ME)
        assert leases.claim(theirs.id, OTHER, 3600)
    stamp = dt.datetime(2026, 1, 1, 12, 1, 0)
    due = dt.datetime(2026, 1, 1, 12, 6, 0)
    for _ in range(2):  # the second call binds the SQL rendered by the first
        with freeze_time("2026-01-01 12:01:00"):
            calendars.record_success(got[ours.id], ME, PassOutcome(
                calendar_id=ours.calendar_id, account="ops", mode="full",
                cursor=Cursor(sync_token="tok-1", token_updated_at=stamp, last_full_sync=stamp)),
                next_due=due)
            calendars.record_success(got[theirs.id], ME, PassOutcome(
                calendar_id=theirs.calendar_id, account="ops", mode="incremental",
                cursor=Cursor(updated_min_cursor_ms=1234)))
    first, second = calendars.read_state(ours.id), calendars.read_state(theirs.id)
    assert first is not None and second is not None
    assert (first.sync_token, first.last_mode, first.last_full_sync, first.next_due) == (
        "tok-1", "full", stamp, due)
    assert first.last_success == stamp and first.consecutive_failures == 0
    assert leases.holder_of(ours.id) is None
    assert (second.updated_min_cursor_ms, second.last_mode, second.sync_token) == (
        1234, "incremental", None)
    assert leases.holder_of(theirs.id) == OTHER  # not ours: left alone

"""Batch claims: one conditional UPDATE for many calendars keeps the lease rules.

A batch takes exactly the leases a single claim would take (free, expired or
already ours), never one a live owner holds, and reads back only what it got.
"""

from __future__ import annotations

import peewee
from freezegun import freeze_time

from reconciler.store import calendars, leases

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

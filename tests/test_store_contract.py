"""Contract tests of the store, run on SQLite, MariaDB and PostgreSQL.

Every engine must keep the same promises: raw JSON round-trips unchanged
(emoji, >64 KB), ids of 1,024 bytes are indexed, change ids are dense and in
commit order across concurrent writers, leases exclude each other.
"""

from __future__ import annotations

import json
import threading

import peewee

from reconciler.eventfields import derive
from reconciler.store import calendars, leases
from reconciler.store.changes import ChangeRecord, read_changes
from reconciler.store.events import (
    EventWrite,
    count_events,
    dump_raw,
    iter_events,
    load_versions,
    sweep,
    write_page,
)
from reconciler.store.migrate import migrate, pending
from tests.conftest import sample_events


def _write(calendar_pk: int, resources: list[dict], kind: str = "created") -> None:
    writes = []
    changes = []
    for resource in resources:
        fields = derive(resource)
        writes.append(EventWrite(fields, fields.updated_ms or 0, dump_raw(resource)))
        changes.append(ChangeRecord(fields.event_id, kind, fields.etag))
    write_page(calendar_pk, writes, changes)


def test_migrations_are_applied_once(store: peewee.Database) -> None:
    assert pending(store) == []
    assert migrate(store) == []


def test_every_sample_round_trips_unchanged(store: peewee.Database) -> None:
    cal = calendars.ensure_calendar("samples@example.com", "ops")
    resources = {}
    for _name, resource in sample_events():
        resources[resource["id"]] = resource
    _write(cal.id, list(resources.values()))
    exported = {json.loads(raw)["id"]: json.loads(raw)
                for _a, _c, _s, raw in iter_events(cal.id, include_cancelled=True)}
    assert exported == resources
    for event_id, raw in exported.items():
        assert list(raw) == list(resources[event_id])  # key order too


def test_emoji_long_ids_and_huge_raw_json(store: peewee.Database) -> None:
    long_calendar = "c_" + "a" * (1024 - 28) + "@group.calendar.google.com"
    assert len(long_calendar) == 1024
    cal = calendars.ensure_calendar(long_calendar, "ops")
    long_id = "v" * 1024
    attendees = [{"email": f"person{i}@example.com", "displayName": f"Person {i} 🎉",
                  "responseStatus": "needsAction"} for i in range(800)]
    resource = {"kind": "calendar#event", "etag": '"1"', "id": long_id, "status": "confirmed",
                "updated": "2025-01-01T00:00:00.000Z", "summary": "🍜 Breakfast ☕",
                "description": "x" * 200_000, "attendees": attendees,
                "start": {"dateTime": "2025-01-01T10:00:00+01:00"},
                "end": {"dateTime": "2025-01-01T11:00:00+01:00"}}
    _write(cal.id, [resource])
    (_, calendar_id, status, raw), = list(iter_events(cal.id))
    assert calendar_id == long_calendar and status == "confirmed"
    assert json.loads(raw) == resource
    assert len(raw.encode()) > 250_000
    assert load_versions(cal.id, [long_id])[long_id].etag == '"1"'
    assert calendars.get_calendar(long_calendar).id == cal.id


def test_upsert_replaces_and_sweep_tombstones_unseen(store: peewee.Database) -> None:
    cal = calendars.ensure_calendar("team@example.com", "ops")
    base = {"kind": "calendar#event", "status": "confirmed", "start": {"date": "2025-01-01"}}
    _write(cal.id, [dict(base, id=f"event{i}", etag=f'"{i}"',
                         updated="2025-01-01T00:00:00.000Z") for i in range(5)])
    _write(cal.id, [dict(base, id="event0", etag='"new"', updated="2025-01-02T00:00:00.000Z")],
           kind="updated")
    assert load_versions(cal.id, ["event0"])["event0"].etag == '"new"'
    removed = sweep(cal.id, {"event0", "event1"}, 1_800_000_000_000)
    assert sorted(c.event_id for c in removed) == ["event2", "event3", "event4"]
    assert count_events(cal.id) == 2
    assert count_events(cal.id, include_cancelled=True) == 5
    tomb = load_versions(cal.id, ["event2"])["event2"]
    assert tomb.status == "cancelled" and tomb.updated_ms == 1_800_000_000_000
    feed = read_changes(0, 100)
    assert [c["kind"] for c in feed[-3:]] == ["deleted"] * 3
    assert [c["id"] for c in feed] == list(range(1, len(feed) + 1))


def test_change_ids_are_dense_and_ordered_across_concurrent_writers(
        store: peewee.Database) -> None:
    cals = [calendars.ensure_calendar(f"cal{i}@example.com", "ops") for i in range(4)]
    errors: list[BaseException] = []

    def writer(cal_pk: int, prefix: str) -> None:
        try:
            for batch in range(5):
                _write(cal_pk, [{"kind": "calendar#event", "id": f"{prefix}{batch}x{i}",
                                 "etag": '"1"', "status": "confirmed",
                                 "start": {"date": "2025-01-01"}} for i in range(20)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(c.id, f"w{n}")) for n, c in enumerate(cals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = [c["id"] for c in read_changes(0, 10_000)]
    assert ids == list(range(1, 401))


def test_leases_exclude_and_release(store: peewee.Database) -> None:
    cal = calendars.ensure_calendar("lease@example.com", "ops")
    assert leases.claim(cal.id, "otherhost:1:aa", 60)
    assert not leases.claim(cal.id, "otherhost:2:bb", 60)
    assert leases.renew(cal.id, "otherhost:1:aa", 60)
    assert not leases.renew(cal.id, "otherhost:2:bb", 60)
    leases.release(cal.id, "otherhost:1:aa")
    assert leases.claim(cal.id, "otherhost:2:bb", 60)


def test_lease_of_a_dead_local_process_is_taken_over_at_once(store: peewee.Database) -> None:
    import socket
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead_owner = f"{socket.gethostname()}:{proc.pid}:deadbeef"
    cal = calendars.ensure_calendar("crash@example.com", "ops")
    assert leases.claim(cal.id, dead_owner, 3600)
    assert leases.claim(cal.id, leases.make_owner(), 60)


def test_processes_starting_together_on_a_new_sqlite_file_all_migrate(tmp_path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/fresh.db"
    code = f"from reconciler.store import open_store; open_store({url!r}); print('ok')"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outcomes]

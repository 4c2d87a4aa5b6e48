"""Database errors name their cause, and lock conflicts are retried at once.

The translation table is driven with real driver exceptions (SQLite's full
disk and read-only database, PyMySQL's closed connection and empty errors,
PostgreSQL's multi-line errors), raised by real databases where they can be;
a real deadlock on MariaDB and on PostgreSQL shows a page commits anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee
import pymysql
import pytest
from playhouse.db_url import connect

from reconciler.errors import DatabaseUnavailable, StoreError
from reconciler.eventfields import derive
from reconciler.store import calendars, open_store
from reconciler.store.changes import ChangeRecord, read_changes
from reconciler.store.dberrors import is_conflict, map_db_errors, translate_db_error
from reconciler.store.events import EventWrite, dump_raw, load_versions, write_page
from reconciler.store.models import key_of


def _write(calendar_pk: int, event_id: str, summary: str = "x", etag: str = '"1"') -> None:
    resource = {"id": event_id, "etag": etag, "status": "confirmed", "summary": summary,
                "updated": "2025-01-01T00:00:00.000Z", "start": {"date": "2025-01-01"}}
    fields = derive(resource)
    raw = dump_raw(resource)
    assert raw is not None
    write_page(calendar_pk, [EventWrite(fields, fields.updated_ms or 0, raw)],
               [ChangeRecord(event_id, "created", fields.etag)])


def test_a_full_sqlite_disk_is_named_with_the_absolute_path(tmp_path: Path) -> None:
    db = open_store(f"sqlite:///{tmp_path}/mirror.db")
    cal = calendars.ensure_calendar("team@example.com", "ops")
    pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
    db.execute_sql(f"PRAGMA max_page_count = {pages + 2}")  # what a full disk answers
    with pytest.raises(StoreError) as caught:
        for n in range(50):
            _write(cal.id, f"ev{n}", "s" * 4000)
    assert str(caught.value).startswith(f"disk full at {tmp_path}/mirror.db")
    assert "rollback" not in str(caught.value)
    db.close()


def test_a_read_only_sqlite_database_is_named(tmp_path: Path) -> None:
    db = open_store(f"sqlite:///{tmp_path}/mirror.db")
    cal = calendars.ensure_calendar("team@example.com", "ops")
    db.execute_sql("PRAGMA query_only = ON")  # SQLITE_READONLY, as a read-only file gives
    with pytest.raises(StoreError) as caught:
        _write(cal.id, "ev")
    assert str(caught.value).startswith(f"cannot write {tmp_path}/mirror.db: read-only")
    db.close()


@pytest.mark.mysql
def test_pymysql_errors_never_show_as_an_empty_tuple(mysql_url: str) -> None:
    db = connect(mysql_url)
    conn = db.connection()
    conn.close()
    with pytest.raises(pymysql.err.InterfaceError) as closed:
        conn.cursor().execute("SELECT 1")
    assert closed.value.args == (0, "")
    lost = translate_db_error(closed.value)
    assert isinstance(lost, DatabaseUnavailable)
    assert str(lost) == "database connection lost; will retry"
    empty = translate_db_error(pymysql.err.InternalError(1105, ""))
    assert str(empty) == "database error: InternalError MySQL error 1105"
    assert "(0, '')" not in str(translate_db_error(peewee.InterfaceError(closed.value)))


@pytest.mark.postgres
def test_postgresql_multi_line_errors_are_one_line(postgres_url: str) -> None:
    db = connect(postgres_url)
    db.execute_sql("CREATE TABLE t (id int PRIMARY KEY)")
    db.execute_sql("INSERT INTO t VALUES (1)")
    with pytest.raises(peewee.IntegrityError) as caught:
        db.execute_sql("INSERT INTO t VALUES (1)")
    assert "\n" in str(caught.value.__cause__ or caught.value.args[0])  # DETAIL: Key (id)=...
    message = str(translate_db_error(caught.value))
    assert "\n" not in message
    assert message.startswith("database error: duplicate key value violates unique constraint")
    db.close()


def _waiting(kind: str) -> str:
    """How many statements of this database wait on the change counter (the other holds it)."""
    if kind == "mysql":  # the processlist is current; innodb_trx is a cached view
        return ("SELECT COUNT(*) FROM information_schema.processlist "
                "WHERE db = DATABASE() AND info LIKE 'UPDATE `counter`%%'")
    return ("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE \"counter\"%%'")


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("kind", [pytest.param("mysql", marks=pytest.mark.mysql),
                                  pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_page_that_loses_a_deadlock_is_retried_at_once_and_commits(
        kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> None:
    url = request.getfixturevalue(f"{kind}_url")
    db = open_store(url)
    cal = calendars.ensure_calendar("team@example.com", "ops")
    _write(cal.id, "deadlocked", etag='"0"')  # committed: the page below updates this row
    other = connect(url)  # a second writer, on its own connection
    watcher = connect(url)
    try:
        _deadlock(kind, cal.id, db, other, watcher, caplog)
    finally:
        other.close()  # an open transaction would block the database's teardown
        watcher.close()
    open_store(url)
    assert load_versions(cal.id, ["deadlocked"])["deadlocked"].etag == '"1"'
    assert [c["event_id"] for c in read_changes(0, 10)] == ["deadlocked"] * 2


def _deadlock(kind: str, calendar_pk: int, db: peewee.Database, other: peewee.Database,
              watcher: peewee.Database, caplog: pytest.LogCaptureFixture) -> None:
    begin = "START TRANSACTION" if kind == "mysql" else "BEGIN"
    if kind == "mysql":  # make the other writer the heavier one: InnoDB rolls back the lighter
        other.execute_sql("CREATE TABLE ballast (n int)")
    other.execute_sql(begin)
    if kind == "mysql":
        other.execute_sql("INSERT INTO ballast VALUES " + ",".join(f"({n})" for n in range(2000)))
    other.execute_sql("SELECT value FROM counter WHERE name = 'change' FOR UPDATE")

    outcome: dict[str, Any] = {}

    def page() -> None:
        try:
            _write(calendar_pk, "deadlocked")
            outcome["ok"] = True
        except Exception as exc:  # reported to the test thread
            outcome["error"] = exc
        finally:
            db.close()

    writer = threading.Thread(target=page)
    with caplog.at_level(logging.INFO, logger="reconciler.store"):
        writer.start()
        # The page holds the event's row and waits for the change counter ...
        _wait_for(lambda: watcher.execute_sql(_waiting(kind)).fetchone()[0] >= 1,
                  "the page to wait for the counter lock")
        # ... which the other writer holds while it now wants the page's row: a cycle.
        other.execute_sql("UPDATE event SET summary = 'other' WHERE event_key = %s",
                          (key_of("deadlocked"),))
        other.execute_sql("COMMIT")
        writer.join(timeout=60)
    assert outcome == {"ok": True}, outcome
    assert any("retrying" in r.getMessage() for r in caplog.records), "no deadlock happened"


def test_conflicts_are_recognised_and_other_errors_are_not() -> None:
    assert is_conflict(pymysql.err.OperationalError(1213, "Deadlock found"))
    assert is_conflict(pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"))
    assert not is_conflict(pymysql.err.OperationalError(2013, "Lost connection"))
    with pytest.raises(StoreError) as caught, map_db_errors():
        raise peewee.OperationalError(pymysql.err.OperationalError(1213, "Deadlock found"))
    assert is_conflict(caught.value)  # still recognised once translated (nested store calls)
    assert "deadlock" in str(caught.value)

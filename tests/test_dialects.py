"""The dialect registry and the bounded connection pool (issue 17).

A backend is one module and one ``register`` call: the registry answers for
the three built-in backends, a registered dialect is asked by the error
mapping, and the pool bounds a process's connections: a store call gives its
connection back, a thread that finds none free waits and then fails with one
line, and a thread that ended holding one does not keep it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import peewee
import pytest

from reconciler.errors import DatabaseUnavailable
from reconciler.store import calendars, dialects, open_store
from reconciler.store.dberrors import translate_db_error
from reconciler.store.dialects.sqlite import SqliteDialect


def test_each_backend_has_one_dialect(any_database_url: str) -> None:
    db = open_store(any_database_url)
    found = dialects.dialect_of(db)
    assert found is dialects.for_backend(found.backend)
    assert {d.backend for d in dialects.registered()} >= {"sqlite", "mysql", "postgresql"}
    assert isinstance(db, found.peewee_class)
    # The dialect's statements work on its own server.
    with found.advisory_lock(db, "reconciler-test", 5), found.write_transaction(db):
        db.execute_sql("SELECT 1")


def test_a_registered_dialect_is_asked_by_the_error_mapping(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Testlite(SqliteDialect):
        backend = "testlite"

        def is_unavailable(self, orig: BaseException) -> bool:
            return "testlite gone" in str(orig)

    monkeypatch.setitem(dialects._BY_BACKEND, "testlite", Testlite())
    assert isinstance(dialects.for_backend("testlite"), Testlite)
    error = peewee.OperationalError("testlite gone")
    assert isinstance(translate_db_error(error), DatabaseUnavailable)
    monkeypatch.delitem(dialects._BY_BACKEND, "testlite")
    assert not isinstance(translate_db_error(error), DatabaseUnavailable)


def test_a_store_call_gives_its_connection_back(tmp_path: Path) -> None:
    db = open_store(f"sqlite:///{tmp_path}/pool.db", pool_size=2, pool_timeout=5)
    assert db.is_closed()  # open_store gave the main thread's back
    done: list[bool] = []

    def work() -> None:
        calendars.ensure_calendar(f"c{len(done)}@example.com", "ops")
        done.append(db.is_closed())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert done == [True] * 8
    assert db.connections_open() <= 2


def test_a_thread_waits_for_a_connection_then_fails_with_one_line(tmp_path: Path) -> None:
    db = open_store(f"sqlite:///{tmp_path}/pool.db", pool_size=1, pool_timeout=1)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        db.connect()
        held.set()
        release.wait(30)
        db.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(DatabaseUnavailable) as caught:
            calendars.all_calendars()
        message = str(caught.value)
        assert "\n" not in message
        assert "no free database connection after 1s" in message
        assert "all 1 of this process's connections are busy" in message
    finally:
        release.set()
        holder.join(30)
    assert calendars.all_calendars() == []  # given back: the next call gets it


def test_a_thread_that_ended_holding_a_connection_does_not_keep_it(tmp_path: Path) -> None:
    db = open_store(f"sqlite:///{tmp_path}/pool.db", pool_size=1, pool_timeout=5)

    def leak() -> None:
        db.execute_sql("SELECT 1")  # autoconnects outside a store call and never closes

    thread = threading.Thread(target=leak)
    thread.start()
    thread.join(30)
    assert calendars.all_calendars() == []  # the ended thread's connection was taken back


def test_sqlite_names_a_full_disk() -> None:
    error = sqlite3.OperationalError("database or disk is full")
    assert "disk full at" in str(translate_db_error(error))

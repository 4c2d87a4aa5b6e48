"""The pass contract: statements per poll, page reports, isolation of failures,
and the store's error boundary (``map_db_errors``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import peewee
import pymysql
import pytest
from playhouse.test_utils import count_queries

from reconciler.emulator import Emulator
from reconciler.errors import DatabaseUnavailable, ReconcilerError, StoreError
from reconciler.outcome import PageCommitted
from reconciler.service import Service
from reconciler.store import calendars
from reconciler.store.dberrors import map_db_errors
from tests.helpers import config_for, write_config

TEAM = "team@group.calendar.google.com"
OTHER = "other@group.calendar.google.com"


def _timed(n: int) -> dict[str, Any]:
    return {"summary": f"e{n}", "start": {"dateTime": "2025-03-01T10:00:00Z"},
            "end": {"dateTime": "2025-03-01T11:00:00Z"}}


@pytest.fixture
def two(calendar_emulator: Emulator) -> Emulator:
    for cid in (TEAM, OTHER):
        calendar_emulator.add_calendar(cid, summary=cid, owners=["user@example.com"])
    return calendar_emulator


def _service(emu: Emulator, tmp_path: Path, database_url: str, **sync: Any) -> Service:
    accounts = [{"name": "ops", "calendars": [TEAM, OTHER]}]
    return Service(config_for(emu, write_config(tmp_path, database_url, accounts, sync)))


def test_a_no_change_poll_costs_one_statement_plus_two_per_batch(two: Emulator, tmp_path: Path,
                                                 database_url: str) -> None:
    svc = _service(two, tmp_path, database_url)
    try:
        rows, _ = svc.resolve_calendars()
        svc.run_pass(rows)  # first (full) sync
        svc.run_pass(rows)  # warm: the account is known to be ok
        with count_queries() as counter:
            report = svc.run_pass(rows)
        assert report.ok and len(report.results) == 2
        # Per batch of calendars (up to ``concurrency``): one claim (UPDATE ... IN)
        # and one re-read (SELECT ... IN); per calendar: record_success (UPDATE).
        assert counter.count == len(rows) + 2, [q.msg for q in counter.get_queries()]
    finally:
        svc.close()


class _Pages:
    """A pass observer that keeps the committed pages (the progress display's one way in)."""

    def __init__(self) -> None:
        self.pages: list[PageCommitted] = []
        self.finished: list[str] = []

    def calendar_started(self, calendar_id: str, account: str) -> None:
        pass

    def page_committed(self, report: PageCommitted) -> None:
        self.pages.append(report)

    def calendar_finished(self, calendar_id: str) -> None:
        self.finished.append(calendar_id)

    def calendar_failed(self, calendar_id: str, message: str) -> None:
        pass


def test_each_committed_page_is_reported(two: Emulator, tmp_path: Path) -> None:
    for n in range(25):
        two.insert_event(TEAM, _timed(n))
    svc = _service(two, tmp_path, f"sqlite:///{tmp_path}/m.db", page_size=10)
    seen = _Pages()
    try:
        rows, _ = svc.resolve_calendars()
        report = svc.run_pass([r for r in rows if r.calendar_id == TEAM], observer=seen)
    finally:
        svc.close()
    assert report.ok
    assert [(p.page, p.items, p.counts.created) for p in seen.pages] == [
        (1, 10, 10), (2, 20, 20), (3, 25, 25)]
    assert seen.finished == [TEAM]
    assert {(p.calendar_id, p.account, p.mode) for p in seen.pages} == {(TEAM, "ops", "full")}
    outcome, = report.results
    assert outcome.full_listing and outcome.cursor.sync_token and outcome.created == 25


def test_an_unexpected_error_in_one_calendar_never_stops_the_others(
        two: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    two.insert_event(OTHER, _timed(1))
    svc = _service(two, tmp_path, f"sqlite:///{tmp_path}/m.db", concurrency=1)
    real = svc.attempts.attempt

    def attempt(calendar: Any, request: Any = None, on_page: Any = None) -> Any:
        if calendar.calendar_id == TEAM:
            raise RuntimeError("boom\nsecond line")
        return real(calendar, request, on_page)

    monkeypatch.setattr(svc.attempts, "attempt", attempt)
    try:
        rows, _ = svc.resolve_calendars()
        report = svc.run_pass(rows)
    finally:
        svc.close()
    assert [r.calendar_id for r in report.results] == [OTHER]
    failure, = report.failures
    assert failure.subject == TEAM and failure.message == "internal error: RuntimeError: boom"
    assert failure.kind == "RuntimeError"


def _wrapped(exc: BaseException) -> BaseException:
    """``exc`` as Peewee raises it from a driver call."""
    try:
        with peewee.__exception_wrapper__:
            raise exc
    except peewee.PeeweeException as wrapped:
        return wrapped
    raise AssertionError("not wrapped")


@pytest.mark.parametrize(("driver_error", "kind", "text"), [
    (pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
     DatabaseUnavailable, "database connection lost (Lost connection to MySQL server during "
     "query); will retry"),
    (pymysql.err.InterfaceError(0, ""), DatabaseUnavailable, "database connection lost; will retry"),
    (pymysql.err.OperationalError(1053, "Server shutdown in progress"), DatabaseUnavailable,
     "database connection lost (Server shutdown in progress); will retry"),
    (pymysql.err.DataError(1406, "Data too long for column 'event_id' at row 1"), StoreError,
     "database error: Data too long for column 'event_id' at row 1"),
    # SQLite's full disk and read-only file name the path: tests/test_db_errors.py.
])
def test_driver_errors_become_one_line_store_errors(driver_error: Exception,
                                                    kind: type[StoreError], text: str) -> None:
    with pytest.raises(StoreError) as caught, map_db_errors():
        raise _wrapped(driver_error)
    assert type(caught.value) is kind and str(caught.value) == text


def test_psycopg2_errors_keep_only_their_first_line(postgres_url: str) -> None:
    from reconciler.store import open_store

    db = open_store(postgres_url)
    try:
        with pytest.raises(StoreError) as caught, map_db_errors():
            db.execute_sql("SELECT * FROM no_such_table")
        assert "\n" not in str(caught.value) and "no_such_table" in str(caught.value)
        assert not isinstance(caught.value, DatabaseUnavailable)
    finally:
        db.close()


def test_store_functions_raise_only_project_errors(tmp_path: Path) -> None:
    from reconciler.store import open_store

    db = open_store(f"sqlite:///{tmp_path}/m.db")
    cal = calendars.ensure_calendar(TEAM, "ops")
    db.execute_sql('DROP TABLE "calendar"')
    with pytest.raises(ReconcilerError) as caught:
        calendars.read_state(cal.id)
    assert isinstance(caught.value, StoreError) and "no such table" in str(caught.value)
    db.close()

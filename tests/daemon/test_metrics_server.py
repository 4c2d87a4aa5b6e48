"""Issue 21, finding 5: the metrics/health server is cheap to poke and says little.

Idle connections hold no thread, a scrape reads the calendars at most every
few seconds, calendar labels can be pseudonyms, and ``/healthz`` never shows
the driver's error text (hosts, users); the log has it.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from playhouse.test_utils import count_queries

from reconciler.clock import utcnow
from reconciler.daemon.metrics import HealthServer, Metrics, calendar_label
from reconciler.store import calendars, open_store
from reconciler.store.models import Calendar, database_proxy
from tests.helpers import wait_for

PERSON = "erin.example@example.com"


@pytest.fixture
def mirror_db(tmp_path: Path) -> Iterator[None]:
    open_store(f"sqlite:///{tmp_path}/m.db")
    calendars.ensure_calendar(PERSON, "ops")
    Calendar.update(last_success=utcnow()).execute()
    yield


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def server(mirror_db: None) -> Iterator[HealthServer]:
    http = HealthServer("127.0.0.1", 0, Metrics(owners=lambda: []),
                        lambda: (True, {"calendars": 1}))
    http.start()
    wait_for(lambda: get(http.port, "/metrics")[0] == 200, 10, "the server to answer")
    yield http
    http.stop()


def test_idle_connections_hold_no_thread_and_the_server_still_answers(
        server: HealthServer) -> None:
    threads_before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(20)]
    try:
        assert get(server.port, "/metrics")[0] == 200  # accepted after the 20 idle ones
        assert threading.active_count() <= threads_before  # no thread per connection
        assert get(server.port, "/healthz")[0] == 200
    finally:
        for sock in idle:
            sock.close()


def test_a_scrape_reads_the_calendars_at_most_every_cache_period(mirror_db: None) -> None:
    cached = Metrics(owners=lambda: [], fleet_cache_seconds=3600)
    with count_queries() as first:
        cached.render()
    with count_queries() as second:
        for _ in range(5):
            cached.render()
    assert (first.count, second.count) == (1, 0)
    uncached = Metrics(owners=lambda: [], fleet_cache_seconds=0)
    with count_queries() as every:
        for _ in range(3):
            uncached.render()
    assert every.count == 3


def test_calendar_labels_can_be_pseudonyms(mirror_db: None) -> None:
    plain = Metrics(owners=lambda: []).render().decode()
    hashed = Metrics(owners=lambda: [], hash_calendar_ids=lambda: True).render().decode()
    label = calendar_label(PERSON, True)
    assert f'calendar="{PERSON}"' in plain
    assert PERSON not in hashed and f'calendar="{label}"' in hashed
    assert label.startswith("sha256:") and len(label) == 7 + 16
    assert calendar_label(PERSON, True) == label and calendar_label("other", True) != label


def test_healthz_body_is_generic_and_the_log_has_the_detail(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="reconciler.daemon.metrics")
    unreachable = peewee.MySQLDatabase("mirror_db", host="127.0.0.1", port=1,
                                       user="probe_user_x", connect_timeout=5)
    database_proxy.initialize(unreachable)
    http = HealthServer("127.0.0.1", 0, Metrics(), lambda: (True, {"calendars": 1}))
    http.start()
    try:
        status, body = get(http.port, "/healthz")
        assert get(http.port, "/healthz")[0] == 503
    finally:
        http.stop()
    assert status == 503
    assert json.loads(body) == {"status": "unhealthy", "problem": "database unavailable"}
    logged = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(logged) == 1 and "127.0.0.1" in logged[0]  # once per cause, with the detail

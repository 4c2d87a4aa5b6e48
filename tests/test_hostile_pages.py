"""Hostile pages: a listing that loops, or a 200 that is not a Calendar page.

The real client talks to a tiny local HTTP server that answers ``events.list``
with whatever the test scripts (the emulator speaks only well-formed pages).
Each case must end the pass with one line and a bounded number of requests,
never a loop and never a traceback.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.config import Config, load_config
from reconciler.engine import PAGE_SLACK, WrittenIds
from reconciler.once import run_once
from reconciler.store import open_store
from reconciler.store.changes import read_changes
from reconciler.store.events import iter_events

TEAM = "team@group.calendar.google.com"
Answer = Callable[[dict[str, list[str]]], tuple[int, bytes]]


class Scripted:
    """A local server answering every events.list with ``answer(query)``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                outer.requests.append(query)
                status, body = outer.answer(query)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Answer], Scripted]]:
    servers: list[Scripted] = []

    def start(answer: Answer) -> Scripted:
        servers.append(Scripted(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _config(tmp_path: Path, server: Scripted, page_size: int = 10) -> Config:
    path = tmp_path / "reconciler.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mirror.db"\n\n'
        "[google]\nretries = 2\nmax_retry_seconds = 10\n\n"
        f"[sync]\npage_size = {page_size}\n\n"
        f'[[accounts]]\nname = "ops"\ncalendars = ["{TEAM}"]\n', encoding="utf-8")
    config = load_config(path, env={"GOOGLE_CALENDAR_EMULATOR_HOST": server.host})
    open_store(config.database.url)
    return config


def _event(n: int) -> dict[str, Any]:
    return {"kind": "calendar#event", "id": f"ev{n}", "etag": f'"{n}"', "status": "confirmed",
            "updated": "2025-01-01T00:00:00.000Z", "start": {"date": "2025-01-01"},
            "end": {"date": "2025-01-02"}}


def _page(items: list[dict[str, Any]], **extra: Any) -> tuple[int, bytes]:
    return 200, json.dumps({"kind": "calendar#events", "items": items, **extra}).encode()


def _no_traceback(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    return err


def test_a_repeated_page_token_ends_the_pass_with_one_line(
        scripted: Callable[[Answer], Scripted], tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    counter = iter(range(10**6))
    server = scripted(lambda q: _page([_event(next(counter))], nextPageToken="again"))
    config = _config(tmp_path, server)
    with caplog.at_level(logging.INFO):
        assert run_once(config) == 1
    err = _no_traceback(caplog, capsys)
    assert "repeated a page token" in err and len(err.strip().splitlines()) == 1
    # page 1 (token "again"), page 2 returns "again" again: stop; the prefetch of
    # page 2 is the only request in flight.
    assert len(server.requests) <= 3
    # Pages committed before the loop was noticed are kept; the cursor is not moved.
    assert len(read_changes(0, 100)) >= 1


def test_a_listing_that_never_ends_is_stopped_by_the_page_bound(
        scripted: Callable[[Answer], Scripted], tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    counter = iter(range(10**6))
    server = scripted(lambda q: _page([], nextPageToken=f"t{next(counter)}"))
    config = _config(tmp_path, server)
    assert run_once(config) == 1
    err = _no_traceback(caplog, capsys)
    assert "ran to" in err and "pages" in err
    assert len(server.requests) <= PAGE_SLACK + 2


@pytest.mark.parametrize("body", [
    b"<html><body>502 Bad Gateway</body></html>",
    b"[1, 2, 3]",
    b"",
    b'{"kind": "calendar#events", "items": [{"id": "a"',
    b'{"kind": "calendar#events", "nextSyncToken": "x"}',
    b'{"kind": "calendar#events", "items": {"id": "a"}}',
], ids=["html", "array", "empty", "cut", "no-items", "items-not-a-list"])
def test_a_body_that_is_not_a_page_is_retried_then_one_line(
        body: bytes, scripted: Callable[[Answer], Scripted], tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    server = scripted(lambda q: (200, body))
    config = _config(tmp_path, server)
    assert run_once(config) == 1
    err = _no_traceback(caplog, capsys)
    assert len(err.strip().splitlines()) == 1
    assert "the API answered 200 with" in err
    assert len(server.requests) == config.google.retries + 1  # retried like a 5xx


def test_a_malformed_body_once_is_retried_and_the_pass_succeeds(
        scripted: Callable[[Answer], Scripted], tmp_path: Path) -> None:
    answers = iter([(200, b"<html>oops</html>")])
    server = scripted(lambda q: next(answers, None) or _page([_event(1)], nextSyncToken="s1"))
    config = _config(tmp_path, server)
    assert run_once(config) == 0
    assert [c["event_id"] for c in read_changes(0, 10)] == ["ev1"]
    assert len(server.requests) == 2


@pytest.mark.parametrize("kind", ["repeat_page_token", "html", "json_array", "empty",
                                  "truncated"])
def test_emulator_hostile_faults_end_the_pass_with_one_line(
        kind: str, calendar_emulator: Any, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import config_for, write_config

    calendar_emulator.add_calendar(TEAM, summary="Team", owners=["user@example.com"])
    for n in range(5):
        calendar_emulator.insert_event(TEAM, {"summary": f"e{n}", "start": {"date": "2025-01-01"},
                                              "end": {"date": "2025-01-02"}})
    config = config_for(calendar_emulator, write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                                                        sync={"page_size": 2}))
    calendar_emulator.inject_fault(TEAM, kind=kind, count=None, methods={"events.list"})
    assert run_once(config) == 1
    err = _no_traceback(caplog, capsys)
    assert len(err.strip().splitlines()) == 1
    lists = [r for r in calendar_emulator.request_log if r.method == "events.list"]
    assert len(lists) <= config.google.retries + 10


@pytest.mark.parametrize("exact_limit", [WrittenIds.EXACT_LIMIT, 2])
def test_an_id_repeated_by_a_first_listing_is_one_row_whichever_way_ids_are_kept(
        scripted: Callable[[Answer], Scripted], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, exact_limit: int) -> None:
    # An event edited while an empty calendar is listed comes back on a later page.
    # With exact_limit=2 the listing's ids are hash buckets from page 1 on.
    monkeypatch.setattr(WrittenIds, "EXACT_LIMIT", exact_limit)
    edited = {**_event(1), "etag": '"1b"', "updated": "2025-01-02T00:00:00.000Z",
              "summary": "edited"}
    pages = {None: _page([_event(n) for n in range(4)], nextPageToken="p2"),
             "p2": _page([edited, _event(4)], nextSyncToken="s1")}
    server = scripted(lambda q: pages[(q.get("pageToken") or [None])[0]])
    config = _config(tmp_path, server)
    assert run_once(config) == 0
    rows = {event["id"]: event for event in (json.loads(raw) for *_, raw in iter_events(None))}
    assert sorted(rows) == [f"ev{n}" for n in range(5)]
    assert rows["ev1"]["summary"] == "edited"
    kinds = [(c["event_id"], c["kind"]) for c in read_changes(0, 100)]
    assert sorted(kinds) == sorted([(f"ev{n}", "created") for n in range(5)] + [("ev1", "updated")])


@given(st.lists(st.text(max_size=12), max_size=200), st.lists(st.text(max_size=12), max_size=50))
def test_written_ids_never_forget_an_id(added: list[str], others: list[str]) -> None:
    written = WrittenIds(exact_limit=16)
    for start in range(0, len(added), 7):
        written.add_all(added[start:start + 7])
    assert all(event_id in written for event_id in added)
    if len(set(added)) <= 16:  # still exact: nothing else is in it
        assert not [o for o in others if o not in added and o in written]

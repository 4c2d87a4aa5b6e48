"""Hostile events: whatever a server sends, one event never blocks its calendar.

A scripted server (the emulator cannot even serialise some of these) answers
``events.list`` with a page holding ordinary events next to hostile ones: ids,
``recurringEventId``, etag and ``originalStartTime`` longer than their columns,
a 100 KB summary, NUL characters and lone surrogates in an id and a summary, a
32-bit overflowing ``sequence`` and one event nested 5,000 levels deep. Through
the real CLI (``once``, ``export``, ``changes``) on SQLite, MariaDB and
PostgreSQL: exit 0, the ordinary events exact, every storable hostile event
exported equal to what was sent (in JSON terms), the deep one refused alone,
the bad events logged (one line per calendar per hour) and no traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli, write_config
from tests.test_hostile_pages import Scripted

TEAM = "team@group.calendar.google.com"
DEEP = 5000


def _event(event_id: str, **extra: Any) -> dict[str, Any]:
    event = {"kind": "calendar#event", "id": event_id, "etag": f'"{len(event_id)}"',
             "status": "confirmed", "updated": "2025-01-01T00:00:00.000Z",
             "summary": f"ordinary {event_id[:20]}", "start": {"date": "2025-01-01"},
             "end": {"date": "2025-01-02"}}
    event.update(extra)
    return event


ORDINARY = [_event(f"ev{n}") for n in range(5)]
HOSTILE = [
    _event("long-id-" + "x" * 2000),
    _event("long-recurring", recurringEventId="r" * 3000),
    _event("long-etag", etag='"' + "e" * 1000 + '"'),
    _event("big-summary", summary="s" * 60_000 + "\U0001f600" * 20_000),  # 140 KB in UTF-8
    _event("long-original", originalStartTime={"dateTime": "2025-01-01T00:00:00Z" + "x" * 500}),
    _event("long-original-date", originalStartTime={"date": "d" * 500}),
    _event("nul\x00id", summary="nul\x00summary"),
    _event("surrogate\ud800id", summary="lone \ud800 surrogate"),
    _event("huge-sequence", sequence=2**40),
    _event("long-status", status="s" * 100),
]
DEEP_ID = "deep-nesting"


def _page_body(items: list[dict[str, Any]], deep: bool, token: str) -> bytes:
    """The page as JSON text; the deep event is spliced in (no encoder writes it)."""
    page = {"kind": "calendar#events", "updated": "2025-01-02T00:00:00.000Z",
            "items": [*items, {"id": DEEP_ID, "etag": '"d"', "status": "confirmed",
                               "updated": "2025-01-01T00:00:00.000Z", "nested": "@DEEP@"}]
            if deep else items, "nextSyncToken": token}
    text = json.dumps(page)  # ensure_ascii: lone surrogates and NUL become escapes
    return text.replace('"@DEEP@"', "[" * DEEP + "]" * DEEP).encode("ascii")


@pytest.fixture
def server() -> Iterator[Scripted]:
    def answer(query: dict[str, list[str]]) -> tuple[int, bytes]:
        if "syncToken" in query:  # the second pass: nothing changed
            return 200, _page_body([], deep=False, token="t2")
        return 200, _page_body([*ORDINARY, *HOSTILE], deep=True, token="t1")

    scripted = Scripted(answer)
    yield scripted
    scripted.close()


def _cli(server: Scripted, config: Path, *args: str) -> Any:
    return run_cli(None, "-c", str(config), *args,
                   env={"GOOGLE_CALENDAR_EMULATOR_HOST": server.host})


@pytest.mark.slow
def test_hostile_events_never_block_the_calendar(server: Scripted, tmp_path: Path,
                                                 database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    first = _cli(server, config, "once")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    # Logged, rate-limited: one line for the calendar, with the first bad event named.
    warnings = [line for line in first.stderr.splitlines()
                if "WARNING" in line and " event " in line and TEAM in line]
    assert len(warnings) == 1, first.stderr
    again = _cli(server, config, "once")  # the cursor moved: the calendar is not stuck
    assert again.returncode == 0, again.stderr
    assert len(server.requests) == 2 and server.requests[1].get("syncToken") == ["t1"]

    export = _cli(server, config, "export")
    assert export.returncode == 0, export.stderr
    rows = [json.loads(line) for line in export.stdout.splitlines()]
    stored = {row["event"]["id"]: row["event"] for row in rows}
    expected = {event["id"]: event for event in [*ORDINARY, *HOSTILE]}
    assert set(stored) == set(expected)  # every event but the refused deep one
    for event_id, event in expected.items():
        assert stored[event_id] == event, event_id[:40]
    assert DEEP_ID not in stored

    changes = _cli(server, config, "changes")
    assert changes.returncode == 0, changes.stderr
    feed = [json.loads(line) for line in changes.stdout.splitlines()]
    assert [c["kind"] for c in feed] == ["created"] * len(expected)
    shown = {c["event_id"] for c in feed}
    assert "ev0" in shown and "nul\ufffdid" in shown and "surrogate\ufffdid" in shown
    assert ("long-id-" + "x" * 2000)[:1024] in shown


@pytest.mark.slow
def test_a_full_listing_keeps_a_stored_event_that_turns_too_deep(
        tmp_path: Path, database_url: str) -> None:
    """A refused event still counts as listed: its stored version is not tombstoned."""
    calls: list[int] = []

    def answer(query: dict[str, list[str]]) -> tuple[int, bytes]:
        calls.append(1)
        if len(calls) == 1:
            return 200, _page_body([*ORDINARY, _event(DEEP_ID)], deep=False, token="t1")
        return 200, _page_body(ORDINARY, deep=True, token="t2")  # DEEP_ID now too deep

    server = Scripted(answer)
    try:
        config = write_config(tmp_path, database_url)
        assert _cli(server, config, "once").returncode == 0
        full = _cli(server, config, "once", "--full")
        assert full.returncode == 0, full.stderr
        assert "refused: nested deeper" in full.stderr
        export = _cli(server, config, "export")
        ids = {json.loads(line)["event"]["id"] for line in export.stdout.splitlines()}
        assert DEEP_ID in ids  # the last storable version stays live
    finally:
        server.close()

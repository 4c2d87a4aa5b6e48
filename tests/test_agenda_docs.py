"""The three SQL queries docs/agenda.md shows run on SQLite and answer the question they ask."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from reconciler.emulator import Emulator
from reconciler.emulator.pytest_plugin import build_client
from tests.helpers import REPO, run_cli, write_config

ROOM = "room-4@resource.calendar.google.com"
ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"


def _queries() -> list[str]:
    text = (REPO / "docs" / "agenda.md").read_text(encoding="utf-8")
    return re.findall(r"```sql\n(.*?)```", text, re.S)


def _seed(emu: Emulator) -> None:
    for cid in (ROOM, ALICE, BOB, CAROL):
        emu.add_calendar(cid, summary=cid, owners=["user@example.com"])
    review = emu.insert_event(ROOM, {
        "summary": "design review",
        "start": {"dateTime": "2025-02-04T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2025-02-04T11:00:00+01:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TU"]})
    emu.delete_event(ROOM, f"{review['id']}_20250225T090000Z")  # another Tuesday, cancelled
    emu.insert_event(ROOM, {"summary": "interview", "start": {"dateTime": "2025-03-04T14:00:00Z"},
                            "end": {"dateTime": "2025-03-04T15:00:00Z"}})
    emu.insert_event(ROOM, {"summary": "wednesday", "start": {"dateTime": "2025-03-05T09:00:00Z"},
                            "end": {"dateTime": "2025-03-05T10:00:00Z"}})
    ooo = {"eventType": "outOfOffice", "summary": "out"}
    emu.insert_event(ALICE, {**ooo, "start": {"dateTime": "2025-03-11T00:00:00Z"},
                             "end": {"dateTime": "2025-03-14T00:00:00Z"}})
    emu.insert_event(CAROL, {**ooo, "start": {"dateTime": "2025-03-03T00:00:00Z"},
                             "end": {"dateTime": "2025-03-05T00:00:00Z"}})
    emu.insert_event(BOB, {"summary": "1:1", "start": {"dateTime": "2025-03-11T09:00:00Z"},
                           "end": {"dateTime": "2025-03-11T10:00:00Z"}})
    standup = emu.insert_event(BOB, {
        "summary": "standup",
        "start": {"dateTime": "2025-11-03T09:30:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2025-11-03T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20251128T235959Z"]})
    emu.delete_event(BOB, f"{standup['id']}_20251105T083000Z")
    emu.insert_event(BOB, {"summary": "holiday", "start": {"date": "2025-11-20"},
                           "end": {"date": "2025-11-21"}})
    emu.insert_event(ALICE, {"summary": "planning", "start": {"dateTime": "2025-11-12T13:00:00Z"},
                             "end": {"dateTime": "2025-11-12T15:00:00Z"}})
    assert build_client(emu.base_url) is not None


def test_the_documented_queries_answer_their_questions(calendar_emulator: Emulator,
                                                       tmp_path: Path) -> None:
    _seed(calendar_emulator)
    db = tmp_path / "m.db"
    config = write_config(tmp_path, f"sqlite:///{db}",
                          accounts=[{"name": "ops", "calendars": [ROOM, ALICE, BOB, CAROL]}],
                          extra="\n[store]\noccurrences = true\noccurrences_past_days = 3660\n")
    result = run_cli(calendar_emulator, "-c", str(config), "once")
    assert result.returncode == 0, result.stderr
    room, out, hours = _queries()
    with sqlite3.connect(db) as conn:
        assert conn.execute(room).fetchall() == [
            ("2025-03-04 09:00:00", "2025-03-04 10:00:00", "design review"),
            ("2025-03-04 14:00:00", "2025-03-04 15:00:00", "interview")]
        assert conn.execute(out).fetchall() == [
            (ALICE, "2025-03-11 00:00:00", "2025-03-14 00:00:00")]
        assert conn.execute(hours).fetchall() == [(ALICE, 2.0), (BOB, 9.5)]


def test_the_readme_shows_the_same_three_queries() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert re.findall(r"```sql\n(.*?)```", readme, re.S) == _queries()

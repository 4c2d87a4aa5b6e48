"""``reconciler status`` for fleets: summary first, problems first, names, filters, ``--check``.

The pure parts (ordering, filters, the check verdict, width fitting, JSON times)
are tested on rows; the command is driven as a subprocess against the emulator.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler import status as logic
from reconciler.emulator import Emulator
from reconciler.store import calendars, open_store
from reconciler.store.models import Calendar
from tests.helpers import run_cli, write_config

STATES = ["ok", "never_synced", "failing", "needs_reauth", "gone", "removed"]


def row(calendar: str, state: str = "ok", *, lag: float | None = 0.0, account: str = "ops",
        interval: int = 300, age: float | None = 10.0, name: str | None = None) -> dict[str, Any]:
    return {"calendar": calendar, "name": name, "account": account, "state": state, "events": 1,
            "last_success": dt.datetime(2025, 1, 1, 12, 0, 0) if age is not None else None,
            "last_success_age_s": age, "last_error": "boom" if state == "failing" else None,
            "consecutive_failures": 1 if state == "failing" else 0, "token_age_s": None,
            "interval_s": interval, "lag_s": lag, "next_due": None, "lease_owner": None,
            "syncing": False, "channel": None, "channel_expires": None, "channel_retry": None}


rows_strategy = st.lists(st.builds(
    lambda i, state, lag, account: row(f"c{i}@x", state, lag=lag, account=account),
    st.integers(0, 50), st.sampled_from(STATES), st.one_of(st.none(), st.floats(0, 10_000)),
    st.sampled_from(["a", "b"])), max_size=30)


@given(rows_strategy)
def test_ordering_puts_every_problem_before_every_healthy_row(rows: list[dict[str, Any]]) -> None:
    ordered = logic.order_rows(rows)
    assert sorted(map(id, ordered)) == sorted(map(id, rows))
    ranks = [0 if logic.is_failing(r) else 1 if logic.is_stale(r) else
             3 if r["state"] == "removed" else 2 for r in ordered]
    assert ranks == sorted(ranks)


@given(rows_strategy)
def test_check_is_ok_exactly_when_nothing_fails_or_lags(rows: list[dict[str, Any]]) -> None:
    code, line = logic.evaluate_check(rows, [])
    live = [r for r in rows if r["state"] != "removed"]
    healthy = live and all(not logic.is_failing(r) and not logic.is_stale(r) for r in live)
    assert (code == 0) == bool(healthy)
    assert line.startswith("OK: " if code == 0 else "WARNING: ") and "\n" not in line


def test_check_lines_and_max_lag() -> None:
    rows = [row("a@x", age=42), row("b@x", age=5)]
    assert logic.evaluate_check(rows, []) == (0, "OK: 2 calendars synced, oldest 42 s ago")
    lagging = [row("a@x", lag=900, age=1200), row("b@x")]
    code, line = logic.evaluate_check(lagging, [])
    assert code == 1 and "1 lagging" in line and "a@x" in line
    assert logic.evaluate_check(lagging, [], max_lag=1000)[0] == 0
    code, line = logic.evaluate_check([row("a@x")], [{"account": "ops", "state": "needs_reauth",
                                                      "last_error": "revoked"}])
    assert code == 1 and "ops" in line


def test_filters() -> None:
    rows = [row("a@x", account="a"), row("b@x", "failing", account="b"),
            row("c@x", lag=5000, account="b"), row("d@x", "removed")]
    assert [r["calendar"] for r in logic.filter_rows(rows, accounts=["b"])] == ["b@x", "c@x"]
    assert [r["calendar"] for r in logic.filter_rows(rows, failing=True)] == ["b@x", "c@x"]
    assert [r["calendar"] for r in logic.filter_rows(rows, states=["stale"])] == ["c@x"]
    assert [r["calendar"] for r in logic.filter_rows(rows, states=["removed", "ok"])] == [
        "a@x", "c@x", "d@x"]


def test_table_fits_the_width_and_json_times_carry_z() -> None:
    rows = [row(f"calendar-with-a-long-id-{i}@group.calendar.google.com", name=f"Team {i}")
            for i in range(3)]
    rows[0]["last_error"] = "x" * 500
    for width in (80, 120, 200):
        text = logic.render_table(rows, width=width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert "STATE" in text and "needs" not in text
        if width >= 120:  # room for whole ids and the names next to them
            assert "Team 1" in text and rows[1]["calendar"] in text
    narrow = logic.render_table([row("a@x", name="A")], width=40)
    assert max(len(line) for line in narrow.splitlines()) <= 40 and "a@x" in narrow
    as_json = logic.to_json(rows[0])
    assert as_json["last_success"] == "2025-01-01T12:00:00Z"
    json.dumps(as_json)


# -- through the real CLI -----------------------------------------------------------------------

def seed(emu: Emulator, calendar_id: str, summary: str | None = None) -> None:
    emu.add_calendar(calendar_id, summary=summary, owners=["user@example.com"])
    emu.seed_raw(calendar_id, [{
        "kind": "calendar#event", "etag": '"1"', "id": "evt1", "status": "confirmed",
        "updated": "2025-01-01T00:00:00.000Z", "summary": "one",
        "start": {"dateTime": "2025-01-01T10:00:00Z"}, "end": {"dateTime": "2025-01-01T11:00:00Z"},
    }])


def test_status_for_a_fleet_and_check_in_three_situations(calendar_emulator: Emulator,
                                                          tmp_path: Path) -> None:
    ids = [f"cal{i:02d}@group.calendar.google.com" for i in range(6)]
    for i, cid in enumerate(ids):
        seed(calendar_emulator, cid, summary=f"Room {i}")
    db = f"sqlite:///{tmp_path}/m.db"
    # discover: the six calendars (with their names) plus the user's primary calendar.
    path = write_config(tmp_path, db, accounts=[{"name": "ops", "discover": True}])

    # 2: the mirror is unreadable (missing) -- and nothing gets created.
    check = run_cli(calendar_emulator, "status", "--check", "-c", str(path))
    assert check.returncode == 2 and check.stdout.startswith("CRITICAL: ")
    assert len(check.stdout.splitlines()) == 1 and not (tmp_path / "m.db").exists()

    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    # 0: everything synced.
    check = run_cli(None, "status", "--check", "-c", str(path))
    assert check.returncode == 0, check.stdout
    assert check.stdout.startswith("OK: 7 calendars synced, oldest ") and check.stdout.endswith(
        " ago\n")

    # 1: one calendar failing, one lagging (its last success a day old), one account parked.
    open_store(db)
    Calendar.update(consecutive_failures=3, last_error="403 forbidden").where(
        Calendar.calendar_id == ids[4]).execute()
    Calendar.update(last_success=dt.datetime(2000, 1, 1)).where(
        Calendar.calendar_id == ids[2]).execute()
    calendars.set_account_state("other", "needs_reauth", "invalid_grant: token revoked")
    check = run_cli(None, "status", "-c", str(path), "--check")
    assert check.returncode == 1
    line = check.stdout.strip()
    assert line.startswith("WARNING: ") and ids[4] in line and ids[2] in line and "other" in line
    assert run_cli(None, "status", "--check", "--max-lag", "31536000", "-c", str(path)).returncode == 1

    # Human view: summary first, problems first, names next to ids, fits 100 columns.
    human = run_cli(None, "status", "-c", str(path), env={"COLUMNS": "100"})
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].startswith("7 calendars: 6 ok, 1 failing (1 stale)")
    assert "oldest successful sync" in lines[0] and "failing accounts: other" in lines[0]
    assert any(line.startswith("account other: needs reauth: invalid_grant") for line in lines)
    assert max(len(line) for line in lines[1:]) <= 100
    body = [line for line in lines if "@group" in line]
    assert ids[4] in body[0] and ids[2] in body[1]  # failing, then stale, then the rest
    assert "Room 4" in body[0]

    # Filters and JSON.
    failing = run_cli(None, "status", "--failing", "--json", "-c", str(path))
    found = [json.loads(x) for x in failing.stdout.splitlines()]
    assert [r["calendar"] for r in found] == [ids[4], ids[2]]
    assert found[1]["last_success"] == "2000-01-01T00:00:00Z" and found[0]["name"] == "Room 4"
    every = [json.loads(x) for x in run_cli(None, "status", "--json", "-c", str(path)).stdout.splitlines()]
    stamps = [r[k] for r in every for k in ("last_success", "next_due") if r[k]]
    assert stamps and all(s.endswith("Z") and "T" in s for s in stamps)
    by_state = run_cli(None, "status", "--state", "failing", "--json", "-c", str(path))
    assert [json.loads(x)["calendar"] for x in by_state.stdout.splitlines()] == [ids[4]]
    by_account = run_cli(None, "status", "--account", "nobody", "--json", "-c", str(path))
    assert by_account.returncode == 0 and by_account.stdout == ""


def test_an_account_needing_reauth_shows_before_any_calendar_synced(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/m.db"
    open_store(db)
    calendars.set_account_state("ops", "needs_reauth", "invalid_grant: Token has been revoked")
    env = {"RECONCILER_DATABASE_URL": db}  # no config file needed to read the mirror
    human = run_cli(None, "status", env=env)
    assert human.returncode == 0, human.stderr
    assert "failing accounts: ops (needs reauth)" in human.stdout.splitlines()[0]
    assert "account ops: needs reauth: invalid_grant" in human.stdout
    check = run_cli(None, "status", "--check", env=env)
    assert check.returncode == 1 and "ops" in check.stdout

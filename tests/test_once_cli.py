"""``reconciler once`` as an operator meets it: interrupts, waits, summaries, one line per cause.

Every test drives the real CLI as a separate process against the emulator. A
calendar is made slow enough to interrupt with the emulator's latency (each
page waits), and signals go to the process as a terminal or a supervisor
sends them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from reconciler.store.models import Calendar, Event
from tests.helpers import (
    REPO,
    assert_mirror_exact,
    config_for,
    emulator_env,
    run_cli,
    wait_for,
    write_config,
)

TEAM = "team@group.calendar.google.com"
OTHER = "other@group.calendar.google.com"
PAGE = 50
EMULATOR_SWITCH = "$GOOGLE_CALENDAR_EMULATOR_HOST is set"  # said once per process, by design


def seed(emu: Emulator, count: int, calendar: str = TEAM) -> None:
    emu.add_calendar(calendar, owners=["user@example.com"])
    emu.seed_raw(calendar, [{
        "kind": "calendar#event", "etag": f'"{1000 + i}"', "id": f"evt{i:05d}",
        "status": "confirmed", "updated": "2025-01-01T00:00:00.000Z", "summary": f"event {i}",
        "start": {"dateTime": "2025-01-01T10:00:00Z"}, "end": {"dateTime": "2025-01-01T11:00:00Z"},
    } for i in range(count)])


class Once:
    """A ``reconciler once`` process whose stderr is read line by line as it comes."""

    def __init__(self, emu: Emulator, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", *args, "once"],
            env=dict(os.environ, **emulator_env(emu)), cwd=REPO, text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(10)
        return code, "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def slow_calendar(calendar_emulator: Emulator, tmp_path: Path) -> Iterator[Path]:
    """A 2,000-event calendar listed 50 a page, each page answered after 150 ms (~6 s)."""
    seed(calendar_emulator, 2000)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db", sync={"page_size": PAGE})
    config_for(calendar_emulator, path)  # binds the store for the checks below
    calendar_emulator.set_latency(fixed_ms=150)
    yield path
    calendar_emulator.set_latency()


def stored() -> int:
    return int(Event.select().count())


def problem_lines(stderr: str) -> list[str]:
    """The lines a user reads as problems: ``reconciler: ...`` lines and log lines at WARNING+."""
    return [line for line in stderr.splitlines()
            if (line.startswith("reconciler: ") or " WARNING " in line or " ERROR " in line
                or "Traceback" in line) and EMULATOR_SWITCH not in line]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_once_after_the_page_in_flight_with_one_line(
        calendar_emulator: Emulator, slow_calendar: Path, signum: int, status: int) -> None:
    once = Once(calendar_emulator, "-c", str(slow_calendar))
    try:
        wait_for(lambda: stored() >= 2 * PAGE or once.proc.poll() is not None, 60,
                 "some pages to be committed")
        assert once.proc.poll() is None, once.lines
        once.proc.send_signal(signum)
        code, stderr = once.finish()
    finally:
        once.kill()
    assert code == status, stderr
    name = signal.Signals(signum).name
    (line,) = problem_lines(stderr)
    assert line.startswith(f"reconciler: interrupted ({name}): stopping after the page in flight")
    assert "synced" not in stderr  # no summary of a pass cut short
    kept = stored()
    assert 2 * PAGE <= kept < 2000 and kept % PAGE == 0  # whole pages, every committed one kept
    row = Calendar.get(Calendar.calendar_id == TEAM)
    assert row.lease_owner is None  # released
    assert row.sync_token is None  # the cursor moves only after the whole listing
    calendar_emulator.set_latency()
    again = run_cli(calendar_emulator, "-c", str(slow_calendar), "once")
    assert again.returncode == 0, again.stderr
    assert_mirror_exact(calendar_emulator, TEAM)


def test_a_second_sigint_stops_at_once_without_a_traceback_or_a_lost_page(
        calendar_emulator: Emulator, slow_calendar: Path) -> None:
    calendar_emulator.set_latency(fixed_ms=3000)  # a page in flight outlasts both signals
    once = Once(calendar_emulator, "-c", str(slow_calendar))
    try:
        wait_for(lambda: stored() >= PAGE or once.proc.poll() is not None, 60,
                 "a page to be committed")
        assert once.proc.poll() is None, once.lines
        once.proc.send_signal(signal.SIGINT)
        wait_for(lambda: once.said("interrupted (SIGINT)"), 30, "the first interrupt to be heard")
        before = stored()
        once.proc.send_signal(signal.SIGINT)
        code, stderr = once.finish()
    finally:
        once.kill()
    assert code == 130, stderr
    assert "Traceback" not in stderr and "RuntimeError" not in stderr
    lines = problem_lines(stderr)
    assert len(lines) == 2 and lines[1].startswith("reconciler: interrupted again (SIGINT): "
                                                   "stopped at once"), stderr
    kept = stored()
    assert kept >= before and kept % PAGE == 0
    calendar_emulator.set_latency()
    again = run_cli(calendar_emulator, "-c", str(slow_calendar), "once")  # dead owner: no wait
    assert again.returncode == 0, again.stderr
    assert_mirror_exact(calendar_emulator, TEAM)


def test_verify_repairs_and_the_summary_agree(calendar_emulator: Emulator,
                                              tmp_path: Path) -> None:
    seed(calendar_emulator, 5)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db")
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    config_for(calendar_emulator, path)
    Event.delete().where(Event.event_id == "evt00001").execute()  # edited behind our back
    Event.update(etag='"stale"', raw='{"id": "evt00002"}').where(
        Event.event_id == "evt00002").execute()
    result = run_cli(calendar_emulator, "-c", str(path), "--log-format", "json", "once",
                     "--verify")
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    passes = [line for line in lines if line["event"] == "synced"]
    (summary,) = [line for line in lines if line["event"].startswith("synced 1 calendar")]
    for kind in ("created", "updated", "deleted"):
        assert summary[kind] == sum(p[kind] for p in passes), (kind, passes, summary)
    assert (summary["created"], summary["updated"]) == (1, 1)
    text = run_cli(calendar_emulator, "-c", str(path), "once", "--verify")
    assert text.returncode == 0 and "synced 1 calendar, 0 failed; 0 created" in text.stderr


def test_once_says_once_who_holds_the_lease_it_waits_for(calendar_emulator: Emulator,
                                                          tmp_path: Path) -> None:
    seed(calendar_emulator, 1)
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db", sync={"lease_time": 5})
    assert run_cli(calendar_emulator, "-c", str(path), "once").returncode == 0
    config_for(calendar_emulator, path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        from reconciler.store import leases

        owner = f"{socket.gethostname()}:{holder.pid}:live"
        row = Calendar.get(Calendar.calendar_id == TEAM)
        assert leases.claim(row.id, owner, 5)
        result = run_cli(calendar_emulator, "-c", str(path), "once")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0, result.stderr  # the holder never renewed: taken after 5 s
    waits = [line for line in result.stderr.splitlines() if "waiting up to" in line]
    assert len(waits) == 1, result.stderr
    assert f"held by {owner} since " in waits[0] and TEAM in waits[0]


def test_an_unresolvable_primary_is_named_in_the_summary(calendar_emulator: Emulator,
                                                         tmp_path: Path) -> None:
    calendar_emulator.inject_fault(None, status=401, reason="authError", count=None,
                                   methods=["calendars.get"])
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        [{"name": "ops", "calendars": ["primary"]}])
    result = run_cli(calendar_emulator, "-c", str(path), "once")
    assert result.returncode == 1
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("synced 0 calendars, 0 failed, account ops failed;"), result.stderr
    assert any(line.startswith("reconciler: account ops: ") for line in result.stderr.splitlines())


def test_calendar_option_accepts_primary_and_names_a_calendar_not_in_the_config(
        calendar_emulator: Emulator, tmp_path: Path) -> None:
    emu = calendar_emulator
    seed(emu, 2)
    seed(emu, 1, OTHER)  # exists, but the config does not name it
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        [{"name": "ops", "calendars": ["primary", TEAM]}])
    first = run_cli(emu, "-c", str(path), "once", "--calendar", "primary")
    assert first.returncode == 0, first.stderr
    assert "synced 1 calendar, 0 failed" in first.stderr
    for command in (["once"], ["export"], ["changes"], ["status"]):
        result = run_cli(emu, "-c", str(path), *command, "--calendar", "primary")
        assert result.returncode == 0, (command, result.stderr)
    result = run_cli(emu, "-c", str(path), "once", "--calendar", OTHER)
    assert result.returncode == 2, result.stderr
    assert f"--calendar {OTHER}: not in the config ({path})" in result.stderr, result.stderr
    assert "did you mean" not in result.stderr
    typo = run_cli(emu, "-c", str(path), "once", "--calendar", "team@group.calendar.google.co")
    assert typo.returncode == 2 and f"did you mean {TEAM}" in typo.stderr


@pytest.mark.slow
def test_a_database_that_dies_during_once_is_one_line(calendar_emulator: Emulator,
                                                       tmp_path: Path) -> None:
    from tests.faults.servers import PrivateMariaDB

    if not PrivateMariaDB.available():
        pytest.skip("MariaDB server binaries not installed")
    server = PrivateMariaDB(tmp_path)
    server.install()
    try:
        cals = [TEAM, OTHER, "third@group.calendar.google.com"]
        for cal in cals:
            seed(calendar_emulator, 2000, cal)
        path = write_config(tmp_path, server.url, [{"name": "ops", "calendars": cals}],
                            sync={"page_size": PAGE})
        text = path.read_text().replace("max_retry_seconds = 20", "max_retry_seconds = 2")
        path.write_text(text.replace("retries = 4", "retries = 0"))
        calendar_emulator.set_latency(fixed_ms=150)
        once = Once(calendar_emulator, "-c", str(path))
        try:
            lists = lambda: sum(1 for r in calendar_emulator.request_log  # noqa: E731
                                if r.method == "events.list")
            wait_for(lambda: lists() >= 9 or once.proc.poll() is not None, 60,
                     "some pages to be listed")
            assert once.proc.poll() is None, once.lines
            server.kill()
            code, stderr = once.finish(120)
        finally:
            once.kill()
    finally:
        calendar_emulator.set_latency()
        server.stop()
    assert code == 1, stderr
    assert "Traceback" not in stderr
    (line,) = problem_lines(stderr)  # one cause, one line: not one per calendar
    assert line.startswith("reconciler: database: database connection lost"), stderr
    assert line.endswith("(3 calendars not synced)"), stderr

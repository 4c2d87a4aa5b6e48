"""Output commands end quietly with status 0 when the reader closes the pipe (``| head``).

Driven as real processes with real pipes: a reader that closes after one line of a
large ``export``/``changes``, and a pipe whose reader is gone before ``status`` or
``history`` writes anything. Click alone would exit 1 (which the exit-status table
reserves for "a calendar failed") and the interpreter would complain at exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.emulator import Emulator
from tests.helpers import REPO, emulator_env, run_cli, write_config

CAL = "team@group.calendar.google.com"
EVENTS = 1500  # export ~1 MB, changes ~250 KB: far more than a pipe buffer holds


@pytest.fixture
def mirrored(calendar_emulator: Emulator, tmp_path: Path) -> Path:
    calendar_emulator.add_calendar(CAL, owners=["user@example.com"])
    calendar_emulator.seed_raw(CAL, [{
        "kind": "calendar#event", "etag": f'"{n}"', "id": f"ev{n:05d}", "status": "confirmed",
        "updated": "2025-01-01T00:00:00.000Z", "summary": f"event {n}", "description": "x" * 500,
        "start": {"dateTime": "2025-01-01T10:00:00Z"}, "end": {"dateTime": "2025-01-01T11:00:00Z"},
    } for n in range(EVENTS)])
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        accounts=[{"name": "ops", "calendars": [CAL]}],
                        extra="\n[store]\nhistory = 3\n")
    synced = run_cli(calendar_emulator, "-c", str(path), "once")
    assert synced.returncode == 0, synced.stderr
    return path


def _env(emu: Emulator) -> dict[str, str]:
    return dict(os.environ, **emulator_env(emu))


@pytest.mark.parametrize("command", [["export"], ["changes"], ["changes", "--diff"]])
def test_reader_closing_after_one_line_ends_with_status_0(
        calendar_emulator: Emulator, mirrored: Path, command: list[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(mirrored),
                             *command], cwd=REPO, env=_env(calendar_emulator),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert first.startswith(b"{")
    proc.stdout.close()  # `| head -1`: the reader has seen enough
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0
    assert err == b""


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["export"],
                                     ["history", "ev00001"], ["changes", "--since", "0"]])
def test_reader_gone_before_the_first_line_ends_with_status_0(
        calendar_emulator: Emulator, mirrored: Path, command: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "reconciler.cli", "-c", str(mirrored),
                                 *command], cwd=REPO, env=_env(calendar_emulator),
                                stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""


def test_a_shell_pipeline_into_head_succeeds(calendar_emulator: Emulator, mirrored: Path) -> None:
    reconciler = f"{sys.executable} -m reconciler.cli -c {mirrored}"
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {reconciler} export | head -1 "
                             f"&& {reconciler} changes | head -1"], cwd=REPO,
                            env=_env(calendar_emulator), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and len(result.stdout.splitlines()) == 2

"""Helpers for the fault suite: a ``run`` subprocess with its log, health, export, feed."""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.emulator import Emulator
from tests import helpers
from tests.helpers import run_cli


class Proc:
    """A ``reconciler run`` subprocess whose stderr is collected by a thread."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            with self._lock:
                self._lines.append(line)

    @property
    def log(self) -> str:
        """stderr so far."""
        with self._lock:
            return "".join(self._lines)

    def count(self, marker: str) -> int:
        """stderr lines so far that contain ``marker``."""
        with self._lock:
            return sum(marker in line for line in self._lines)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def finish(self, timeout: float = 30) -> str:
        """Wait for the exit and the last log lines; the whole log."""
        self.popen.wait(timeout)
        self._reader.join(5)
        return self.log


@contextmanager
def reconciler_run(emu: Emulator, config: Path) -> Iterator[Proc]:
    """``reconciler -c CONFIG run`` (see :func:`tests.helpers.reconciler_run`), its stderr
    read as it comes."""
    with helpers.reconciler_run(emu, config, stdout=subprocess.DEVNULL) as popen:
        yield Proc(popen)


def health(port: int) -> int:
    """The status of GET /healthz (0 when nothing answers in 10 s)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def export(emu: Emulator, config: Path) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """``reconciler export --include-cancelled``: (calendar, event id) -> (status, resource)."""
    out = run_cli(emu, "-c", str(config), "export", "--include-cancelled")
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        row = json.loads(line)
        rows[(row["calendar"], row["event"]["id"])] = (row["status"], row["event"])
    return rows


def mirror_matches(emu: Emulator, config: Path, calendars: list[str]) -> bool:
    """Live exported rows equal the emulator's live events; its deleted ones are not live."""
    rows = export(emu, config)
    for cal in calendars:
        truth = {e["id"]: e for e in emu.events(cal) if e.get("status") != "cancelled"}
        live = {eid: ev for (c, eid), (status, ev) in rows.items()
                if c == cal and status != "cancelled"}
        if live != truth:
            return False
    return True


def feed(emu: Emulator, config: Path) -> list[dict[str, Any]]:
    """``reconciler changes``: every row of the change feed."""
    out = run_cli(emu, "-c", str(config), "changes")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def assert_feed_clean(emu: Emulator, config: Path, calendars: list[str]) -> None:
    """Ids increase; exactly one ``created`` per event; a deleted event's last row is ``deleted``."""
    rows = feed(emu, config)
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    created = Counter((r["calendar"], r["event_id"]) for r in rows if r["kind"] == "created")
    last: dict[tuple[str, str], str] = {}
    for r in rows:
        last[(r["calendar"], r["event_id"])] = r["kind"]
    for cal in calendars:
        for event in emu.events(cal):
            key = (cal, event["id"])
            if event.get("status") == "cancelled":
                assert created[key] <= 1, key
                if created[key]:
                    assert last[key] == "deleted", key
            else:
                assert created[key] == 1, (key, created[key])
                assert last[key] != "deleted", key

"""Helpers for the watch tests: a watch-enabled config, a hint-honouring poll loop, raw POSTs.

``HintLoop`` stands in for ``reconciler run`` (not in the tree when these tests
were written): it polls every ``interval`` seconds and, within ``check``
seconds of ``calendar.sync_requested_at`` being set, clears the column and runs
one incremental sync. Clearing *before* syncing is what makes "a hint during a
sync causes exactly one more pass" hold: a hint cleared by the loop came from a
change made before the sync that follows the clear.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import socket
import threading
import time
from pathlib import Path
from typing import Any

from reconciler.clock import utcnow
from reconciler.emulator import Emulator
from reconciler.errors import ReconcilerError
from reconciler.service import Service
from reconciler.store.models import Calendar
from tests.helpers import write_config

TEAM = "team@group.calendar.google.com"
SECRET = "s3cret-for-tests-only-0123456789"
HOOK_PATH = "/hooks/calendar"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def watch_config(tmp_path: Path, database_url: str, port: int, *, ttl: int = 604800,
                 renew_margin: int = 3600, interval: int = 300) -> Path:
    """A config with watch mode on, the receiver on ``port``, one account syncing TEAM."""
    extra = ("\n[watch]\nenabled = true\n"
             f'address = "http://127.0.0.1:{port}{HOOK_PATH}"\n'
             f'listen = "127.0.0.1:{port}"\n'
             f'secret = "{SECRET}"\nttl = {ttl}\nrenew_margin = {renew_margin}\n')
    return write_config(tmp_path, database_url, sync={"interval": interval, "lease_time": 30, "jitter": 0},
                        extra=extra)


class ShiftedClock:
    """``utcnow`` plus an offset the test moves (in step with the emulator's clock)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset

    def advance(self, emu: Emulator, seconds: float) -> None:
        """Move this clock and the emulator's by the same amount."""
        self.offset += dt.timedelta(seconds=seconds)
        emu.clock.advance(seconds)


class HintLoop:
    """A minimal poller: every ``interval`` s, and within ``check`` s of a hint."""

    def __init__(self, service: Service, calendar_id: str = TEAM, *, interval: float = 300.0,
                 check: float = 0.1) -> None:
        self.service = service
        self.calendar_id = calendar_id
        self.interval = interval
        self.check = check
        self.passes: list[tuple[float, float, str]] = []  # (start, end, why)
        self.busy = False  # True while it looks at the hint or runs a pass
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hint-loop", daemon=True)

    def __enter__(self) -> HintLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_poll = time.monotonic() + self.interval
        while not self._stop.is_set():
            self.busy = True  # before the hint is cleared, so idle() never sees neither
            row = Calendar.get(Calendar.calendar_id == self.calendar_id)
            why = None
            requested = row.sync_requested_at
            if requested is not None and Calendar.update(sync_requested_at=None).where(
                    (Calendar.id == row.id) & (Calendar.sync_requested_at == requested)).execute():
                why = "hint"
            elif time.monotonic() >= next_poll:
                why = "poll"
                next_poll += self.interval
            if why is not None:
                start = time.monotonic()
                with contextlib.suppress(ReconcilerError):
                    self.service.sync_calendar(row, lease_wait=10)
                self.passes.append((start, time.monotonic(), why))
            self.busy = False
            self._stop.wait(self.check)

    def count(self, why: str | None = None) -> int:
        """Passes so far (of one kind)."""
        return sum(1 for p in self.passes if why is None or p[2] == why)

    def idle(self, emu: Emulator) -> bool:
        """No notification on its way, no hint pending, no pass running (the poll is far away)."""
        return (emu.hub.wait_idle(0.05) and not self.busy
                and Calendar.get(Calendar.calendar_id == self.calendar_id).sync_requested_at is None)

    def sentinel(self) -> None:
        """Ask for one more pass, as a notification would (see :func:`tests.helpers.quiet_period`)."""
        Calendar.update(sync_requested_at=utcnow()).where(
            Calendar.calendar_id == self.calendar_id).execute()


def post(port: int, headers: dict[str, str], *, path: str = HOOK_PATH, body: bytes = b"",
         method: str = "POST") -> int:
    """Send one request to the receiver; the HTTP status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return int(response.status)
    finally:
        conn.close()


def notification(channel: dict[str, Any], number: int, *, state: str = "exists",
                 token: str | None = None) -> dict[str, str]:
    """Google's headers for message ``number`` of an emulator channel (as from ``emu.channels()``)."""
    return {"X-Goog-Channel-ID": channel["id"], "X-Goog-Message-Number": str(number),
            "X-Goog-Resource-ID": channel["resourceId"], "X-Goog-Resource-State": state,
            "X-Goog-Resource-URI": channel["resourceUri"],
            "X-Goog-Channel-Token": channel["token"] if token is None else token,
            "Content-Length": "0"}

"""``reconciler once`` obeys the ``[quota]`` budget, as ``run`` does.

A pass over more calendars than the per-user bucket holds waits for its
tokens instead of sending them all (the emulator does not enforce
quotas; Google would answer 403 rateLimitExceeded). Time is a fake clock that the
budget's waits advance (no real waiting, no timed assertions): the test
checks the budget's recorded waits and the requests per minute.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reconciler.daemon.quota import QuotaBudget
from reconciler.emulator import Emulator
from reconciler.once import run_once
from tests.helpers import assert_mirror_exact, config_for, write_config

QUOTA = 5


class FakeTime(threading.Event):
    """A monotonic clock whose waits pass at once and move it forward."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        with self.lock:
            self.now = max(self.now, self.now + (timeout or 0.0))
        return False


def test_once_that_would_exceed_the_per_user_quota_waits(calendar_emulator: Emulator,
                                                         tmp_path: Path) -> None:
    emu = calendar_emulator
    ids = [f"q{i}@group.calendar.google.com" for i in range(2 * QUOTA + 2)]
    for cid in ids:
        emu.add_calendar(cid)
        emu.insert_event(cid, {"summary": "x", "start": {"date": "2026-01-01"},
                               "end": {"date": "2026-01-02"}})
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/m.db",
                        [{"name": "ops", "calendars": ids}], {"concurrency": 1},
                        extra=f"\n[quota]\nper_user_requests_per_minute = {QUOTA}\n")
    config = config_for(emu, path)
    fake = FakeTime()
    waits: list[float] = []
    budget = QuotaBudget(config.quota, fake, clock=fake.clock, on_wait=waits.append)
    sent: list[float] = []  # fake time at which each request was let through
    gate = budget.before_request

    def recording(account: str, method: str) -> None:
        gate(account, method)
        sent.append(fake.clock())

    budget.before_request = recording  # type: ignore[method-assign]
    emu.clear_request_log()
    assert run_once(config, budget=budget) == 0
    for cid in ids:
        assert_mirror_exact(emu, cid)
    assert len([r for r in emu.request_log if r.method == "events.list"]) == len(ids)
    # One calendar at a time (the fake time is shared by all threads): the bucket
    # holds one token (5 a minute, 10 s of burst), so after the first request
    # each waits for the next token, 60 / 5 = 12 s later.
    assert waits and all(w == pytest.approx(60 / QUOTA) for w in waits)
    assert len(sent) == len(ids)
    for start in sent:
        assert sum(start <= t < start + 60 for t in sent) <= QUOTA + 1
    assert max(sent) - min(sent) >= (len(ids) - 1) * 60 / QUOTA - 1e-6

"""Test helpers: configs for an emulator, event bodies, waits, and mirror checks.

The one home of the helpers every test directory shares (the emulator tests
import it too). Waits are keyed on events, never on time:

- :func:`wait_for` polls a condition with a short step and fails naming what it
  waited for; its poll loop is the only ``time.sleep`` tests use to wait.
- :func:`quiet_period` proves that *nothing more happens* without sleeping: it
  waits until the system says it is settled, then triggers a sentinel (a
  request that must produce one more API call) and waits for that call. Any
  unwanted request caused by what came before would be in the emulator's
  request log ahead of the sentinel's, so the requests before the sentinel are
  the complete answer, and the sentinel proves the system was alive to make
  them.
- :func:`timed` is the one event-body builder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from reconciler.config import Config, load_config
from reconciler.emulator import Emulator
from reconciler.emulator.emulator import RequestRecord
from reconciler.store import open_store
from reconciler.store.events import iter_events

REPO = Path(__file__).resolve().parents[1]
POLL_STEP = 0.02  # seconds between two looks at a condition

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "the condition",
             *, step: float = POLL_STEP) -> T:
    """Poll ``condition`` until it returns something true; that value.

    Fails with an ``AssertionError`` naming ``what`` when ``timeout`` seconds
    pass first. The timeout only bounds a failing test; a passing one returns
    as soon as the event happened.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


def quiet_period(requests: Callable[[], Sequence[RequestRecord]], *,
                 settled: Callable[[], object], sentinel: Callable[[], object],
                 timeout: float = 15.0, what: str = "quiet") -> list[RequestRecord]:
    """The requests made before a sentinel, proving nothing more was on its way.

    ``requests`` returns the emulator requests of interest (e.g. one
    calendar's ``events.list``), ``settled`` says the system is idle with no
    work scheduled soon (no pending hint, no pass running, the next poll far
    away), and ``sentinel`` triggers one more request of the same kind (e.g. a
    sync hint). Steps: wait until settled; mark the moment; trigger the
    sentinel; wait until a request starts after the mark and the system is
    settled again. Everything the earlier activity caused started before the
    mark (the system was settled, so nothing was due), and the sentinel's
    request shows the system would have made it. Returns the requests that
    started before the mark.
    """
    wait_for(settled, timeout, f"{what}: the system to settle")
    mark = time.monotonic()
    sentinel()
    wait_for(lambda: any(r.start > mark for r in requests()), timeout,
             f"{what}: the sentinel's request")
    wait_for(settled, timeout, f"{what}: the system to settle after the sentinel")
    return [r for r in requests() if r.start <= mark]


def timed(summary: str = "x", *, day: int = 1, hour: int = 10, month: str = "2025-03",
          **extra: Any) -> dict[str, Any]:
    """A one-hour timed event body on ``month``-``day`` at ``hour`` UTC, plus ``extra`` fields."""
    return {"summary": summary,
            "start": {"dateTime": f"{month}-{day:02d}T{hour:02d}:00:00Z"},
            "end": {"dateTime": f"{month}-{day:02d}T{hour + 1:02d}:00:00Z"},
            **extra}


def lists_of(emu: Emulator, calendar_id: str) -> list[RequestRecord]:
    """The ``events.list`` requests the emulator saw for one calendar, in order."""
    return [r for r in emu.request_log if r.method == "events.list" and r.calendar_id == calendar_id]


def write_config(tmp_path: Path, database_url: str, accounts: list[dict[str, Any]] | None = None,
                 sync: dict[str, Any] | None = None, extra: str = "") -> Path:
    """A TOML config file for the given database and accounts."""
    accounts = accounts or [{"name": "ops", "calendars": ["team@group.calendar.google.com"]}]
    lines = ["[database]", f"url = {json.dumps(database_url)}", "", "[google]",
             "max_retry_seconds = 20", "retries = 4", "", "[sync]"]
    for key, value in (sync or {}).items():
        lines.append(f"{key} = {json.dumps(value)}")
    for account in accounts:
        lines += ["", "[[accounts]]"]
        for key, value in account.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "reconciler.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def stop_process(proc: subprocess.Popen[str], wait: float = 20) -> None:
    """SIGTERM ``proc`` if it still runs, kill it after ``wait`` seconds, and drain its pipes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.communicate(timeout=5)


def emulator_env(emu: Emulator) -> dict[str, str]:
    """The environment that points the reconciler at ``emu``."""
    return {"GOOGLE_CALENDAR_EMULATOR_HOST": emu.host}


def without_emulator_warning(stderr: str) -> str:
    """``stderr`` without the one WARNING a process pointed at the emulator by
    ``$GOOGLE_CALENDAR_EMULATOR_HOST`` logs when it starts syncing."""
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if "WARNING reconciler.config: $GOOGLE_CALENDAR_EMULATOR_HOST is set" not in line)


def config_for(emu: Emulator, path: Path) -> Config:
    """Load a config file as the CLI would with the emulator variable set."""
    config = load_config(path, env=emulator_env(emu))
    open_store(config.database.url)
    return config


def run_cli(emu: Emulator | None, *args: str, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``reconciler ARGS`` in a subprocess, as other tools do."""
    full_env = dict(os.environ)
    if emu is not None:
        full_env.update(emulator_env(emu))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def mirror(calendar_id: str | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """The mirror's rows: event id -> (status, raw resource)."""
    rows = {}
    for _account, cal, status, raw in iter_events(None, include_cancelled=True):
        if calendar_id is None or cal == calendar_id:
            event = json.loads(raw)
            rows[event["id"]] = (status, event)
    return rows


def assert_mirror_exact(emu: Emulator, calendar_id: str) -> None:
    """Live rows equal the emulator's live events byte for byte; deleted ones are tombstones."""
    truth = {e["id"]: e for e in emu.events(calendar_id)}
    rows = mirror(calendar_id)
    live_truth = {i: e for i, e in truth.items() if e.get("status") != "cancelled"}
    live_rows = {i: raw for i, (status, raw) in rows.items() if status != "cancelled"}
    assert set(live_rows) == set(live_truth), (
        f"missing {sorted(set(live_truth) - set(live_rows))[:5]}, "
        f"extra {sorted(set(live_rows) - set(live_truth))[:5]}")
    for event_id, event in live_truth.items():
        assert live_rows[event_id] == event, event_id
    for event_id, event in truth.items():
        if event.get("status") == "cancelled" and event_id in rows:
            assert rows[event_id][0] == "cancelled", event_id


@contextmanager
def reconciler_run(emu: Emulator, config: Path, *,
                   stdout: int = subprocess.PIPE) -> Iterator[subprocess.Popen[str]]:
    """``reconciler -c CONFIG run`` in its own session (signals reach its group);
    killed at the end if it is still alive."""
    env = dict(os.environ, GOOGLE_CALENDAR_EMULATOR_HOST=emu.host)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(config), "run"],
                            env=env, cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

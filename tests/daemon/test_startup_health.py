"""``/healthz`` while ``run`` starts: 503 "starting" with the reason until the calendar set
is resolved and a first pass has succeeded; an unresolved set is retried with backoff and
said once (one WARNING, one INFO), never a silent "0 calendar(s) scheduled".

The first test drives ``reconciler run`` as a process started while Google (the
emulator) is down: nothing listens on its port until the test starts it there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from reconciler.emulator import Emulator
from reconciler.emulator.server import running_emulator
from tests.daemon.support import free_port, load, running_daemon, write_daemon_config
from tests.faults.support import Proc
from tests.helpers import REPO, timed, wait_for

USER = "user@example.com"  # the emulator's default identity: its primary calendar
TEAM = "team@group.calendar.google.com"


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of GET /healthz ((0, {}) when nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())
    except OSError:
        return 0, {}


def test_run_started_while_google_is_down_says_so_then_becomes_healthy(tmp_path: Path) -> None:
    google_port, metrics_port = free_port(), free_port()
    path = write_daemon_config(tmp_path, f"sqlite:///{tmp_path}/mirror.db",
                               [{"name": "ops", "discover": True}],
                               {"sync": {"interval": 60, "jitter": 0},
                                "metrics": {"port": metrics_port, "host": "127.0.0.1"}})
    env = dict(os.environ, GOOGLE_CALENDAR_EMULATOR_HOST=f"127.0.0.1:{google_port}")
    popen = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-c", str(path), "run"],
                             env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    proc = Proc(popen)
    try:
        answers: list[tuple[int, dict[str, Any]]] = []

        def starting() -> bool:
            answers.append(healthz(metrics_port))
            return answers[-1][0] == 503 and proc.count("calendar set not resolved") > 0

        wait_for(starting, 30, "/healthz 503 while the calendar set is not resolved")
        status, body = answers[-1]
        assert status == 503 and body["status"] == "starting" and body["calendars"] == 0, body
        reason = body["reason"]
        assert reason.startswith("calendar set not resolved: account ops"), reason
        assert "\n" not in reason
        assert proc.count("0 calendar(s) scheduled so far (calendar set not resolved; "
                          "retrying)") == 1
        warning, = [line for line in proc.log.splitlines()
                    if "calendar set not resolved:" in line]
        assert "WARNING" in warning and "retrying in 2s" in warning, warning
        print(warning)
        # Google comes back where the process looks for it.
        emu = Emulator()
        emu.add_calendar(TEAM, owners=[USER])
        emu.insert_event(TEAM, timed("after the outage"))
        with running_emulator(emu, port=google_port):
            wait_for(lambda: healthz(metrics_port)[0] == 200, 60, "/healthz 200 once resolved")
            status, body = healthz(metrics_port)
            assert status == 200 and body == {"status": "ok", "calendars": 2}, body
            assert proc.count("calendar set resolved after") == 1
            popen.send_signal(signal.SIGTERM)
            log = proc.finish(20)
    finally:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(10)
    assert popen.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    # Said once each way, however many retries the outage took.
    assert sum("calendar set not resolved" in line for line in log.splitlines()) == 2, log
    resolved, = [line for line in log.splitlines() if "calendar set resolved after" in line]
    assert "INFO" in resolved and "2 calendar(s) scheduled" in resolved, resolved


def test_healthz_waits_for_a_first_pass_that_succeeds(calendar_emulator: Emulator,
                                                       tmp_path: Path) -> None:
    emu = calendar_emulator
    emu.add_calendar(TEAM)
    emu.inject_fault(TEAM, status=503, reason="backendError", count=None, methods=["events.list"])
    port = free_port()
    config = load(emu, write_daemon_config(tmp_path, f"sqlite:///{tmp_path}/mirror.db", [
        {"name": "ops", "calendars": [TEAM]}],
        {"sync": {"interval": 1, "backoff_max": 1}, "metrics": {"port": port}}))
    with running_daemon(config, rand=lambda: 0.0):
        wait_for(lambda: any(r.status == 503 for r in emu.request_log
                             if r.method == "events.list"), 10, "a failed first pass")
        status, body = healthz(port)
        assert (status, body) == (503, {"status": "starting", "calendars": 1,
                                        "reason": "no pass has succeeded yet"})
        emu.clear_faults()
        wait_for(lambda: healthz(port)[0] == 200, 15, "/healthz 200 after the first success")

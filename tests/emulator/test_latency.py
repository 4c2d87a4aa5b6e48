"""Latency: every API answer waits fixed + per item + jitter, concurrently, never under a lock."""

from __future__ import annotations

import http.client
import json
import random
import subprocess
import sys
import threading
from typing import Any

import pytest
from emulator_helpers import build_service, timed

from reconciler.emulator import Emulator, running_emulator
from reconciler.emulator.latency import Latency


def _concurrent_gets(emu: Emulator, n: int, path: str) -> list[int]:
    """Send ``n`` GETs at once, each on its own connected socket; returns their statuses."""
    conns = [http.client.HTTPConnection(emu.host, timeout=60) for _ in range(n)]
    for c in conns:
        c.connect()
    barrier = threading.Barrier(n)
    statuses: list[int] = [0] * n

    def one(i: int) -> None:
        barrier.wait()
        conns[i].request("GET", path)
        resp = conns[i].getresponse()
        resp.read()
        statuses[i] = resp.status

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    return statuses


def test_delay_formula_with_seeded_jitter() -> None:
    lat = Latency(random.Random(7))
    assert lat.seconds(100) == 0.0  # off by default
    lat.set(fixed_ms=150, per_item_ms=0.5, jitter_ms=40)
    expect = random.Random(7)
    for items in (0, 1, 250):
        assert lat.seconds(items) == pytest.approx((150 + 0.5 * items + expect.uniform(0, 40)) / 1000)
    for bad in ({"fixed_ms": -1}, {"per_item_ms": float("nan")}, {"jitter_ms": float("inf")}):
        with pytest.raises(ValueError):
            lat.set(**bad)
    assert lat.settings.fixed_ms == 150  # a refused value changes nothing


def test_32_requests_with_200ms_overlap() -> None:
    with running_emulator() as emu:
        emu.add_calendar("team@group.calendar.google.com")
        emu.set_latency(fixed_ms=200)
        emu.concurrency(reset=True)
        statuses = _concurrent_gets(emu, 32, "/calendar/v3/calendars/team%40group.calendar.google.com/events")
        assert statuses == [200] * 32
        seen = emu.concurrency()
        # a server that serialised delayed requests (or slept under its lock) would peak at 1
        assert seen == {"in_flight": 0, "max_in_flight": 32}
        log = emu.request_log
        assert len(log) == 32 and all(r.delay == pytest.approx(0.2) for r in log)
        # every answer waited its latency: the log spans overlap instead of adding up
        assert all(r.end - r.start >= 0.2 for r in log)


@pytest.mark.slow
def test_64_delayed_requests_all_in_flight_at_once() -> None:
    with running_emulator() as emu:
        emu.set_latency(fixed_ms=1000)
        statuses = _concurrent_gets(emu, 64, "/calendar/v3/users/me/calendarList")
        assert statuses == [200] * 64
        assert emu.concurrency()["max_in_flight"] == 64


def test_per_item_latency_through_the_real_client(emu: Any, svc: Any) -> None:
    for d in range(1, 6):
        svc.events().insert(calendarId="primary", body=timed(day=d)).execute()
    emu.set_latency(fixed_ms=5, per_item_ms=10)
    emu.clear_request_log()
    items = svc.events().list(calendarId="primary", maxResults=3).execute()["items"]
    assert len(items) == 3
    svc.events().get(calendarId="primary", eventId=items[0]["id"]).execute()
    svc.calendarList().list().execute()
    log = emu.request_log
    assert [(r.method, r.delay) for r in log] == [
        ("events.list", pytest.approx(0.035)),
        ("events.get", pytest.approx(0.005)),
        ("calendarList.list", pytest.approx(0.015)),  # one calendar: the primary
    ]
    assert all(r.end - r.start >= r.delay for r in log)
    emu.set_latency()
    svc.events().list(calendarId="primary").execute()
    assert emu.request_log[-1].delay == 0.0


def test_control_api_sets_latency_and_is_not_delayed(emu: Any) -> None:
    def call(op: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        c = http.client.HTTPConnection(emu.host, timeout=30)
        c.request("POST", f"/_emulator/{op}", body=json.dumps(body or {}))
        r = c.getresponse()
        data = json.loads(r.read() or b"{}")
        c.close()
        return r.status, data

    assert call("set_latency", {"fixed_ms": 30, "jitter_ms": 0})[0] == 200
    assert emu.latency.settings.fixed_ms == 30
    status, body = call("set_latency", {"fixed_ms": -5})
    assert status == 400 and "fixed_ms" in body["error"]
    status, body = call("concurrency", {"reset": True})
    assert status == 200 and body["in_flight"] == 0  # control requests are not counted
    svc = build_service(emu.base_url)
    svc.events().list(calendarId="primary").execute()
    assert emu.request_log[-1].delay == pytest.approx(0.03)


def test_token_endpoint_is_delayed(emu: Any) -> None:
    emu.set_latency(fixed_ms=50)
    c = http.client.HTTPConnection(emu.host, timeout=30)
    c.request(
        "POST",
        "/token",
        body="grant_type=refresh_token&refresh_token=r",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    r = c.getresponse()
    assert r.status == 200 and "access_token" in json.loads(r.read())
    c.close()
    assert emu.concurrency()["max_in_flight"] == 1


def test_cli_latency_options_and_port_range() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "emulator", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr and "99999" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "emulator", "--latency-ms", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--latency-ms" in out.stderr
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler.cli",
            "emulator",
            "--port",
            "0",
            "--latency-ms",
            "40",
            "--latency-per-item-ms",
            "2",
            "--latency-jitter-ms",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        host = line.rsplit("GOOGLE_CALENDAR_EMULATOR_HOST=", 1)[1].strip()
        c = http.client.HTTPConnection(host, timeout=30)
        c.request("GET", "/calendar/v3/calendars/primary/events")
        assert c.getresponse().read()
        c.request("GET", "/_emulator/requests")
        log = json.loads(c.getresponse().read())
        c.close()
        assert [(r["method"], r["delay"]) for r in log] == [("events.list", pytest.approx(0.04))]
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0

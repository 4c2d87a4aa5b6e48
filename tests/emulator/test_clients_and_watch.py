"""A client nobody here wrote (gcal-sync), push notifications, and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import timed


def test_gcal_sync_full_incremental_and_410(emu: Any) -> None:
    import aiohttp
    from gcal_sync.api import GoogleCalendarService
    from gcal_sync.auth import AbstractAuth
    from gcal_sync.sync import CalendarEventSyncManager

    cal = "team@group.calendar.google.com"
    emu.add_calendar(cal, owners=["user@example.com"])
    ids = [emu.insert_event(cal, timed(f"e{i}", day=1 + i % 28))["id"] for i in range(30)]
    seen_etags: dict[str, str] = {}

    class Auth(AbstractAuth):
        async def async_get_access_token(self) -> str:
            return "anything"

        async def get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
            result = await super().get_json(url, **kwargs)
            for item in result.get("items", []):
                seen_etags[item["id"]] = item["etag"]
            return result

    def truth() -> dict[str, str]:
        return {e["id"]: e["etag"] for e in emu.events(cal)}

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            api = GoogleCalendarService(Auth(session, host=emu.base_url.rstrip("/")))
            sync = CalendarEventSyncManager(api, calendar_id=cal)
            await sync.run()
            assert seen_etags == truth()
            emu.patch_event(cal, ids[0], {"summary": "changed"})
            emu.delete_event(cal, ids[1])
            emu.insert_event(cal, timed("new"))
            await sync.run()
            assert seen_etags == truth()
            emu.clear_request_log()
            emu.expire_tokens(cal)
            emu.patch_event(cal, ids[2], {"summary": "after 410"})
            seen_etags.clear()
            await sync.run()
            statuses = [r.status for r in emu.request_log if r.method == "events.list"]
            assert statuses[0] == 410 and statuses[-1] == 200
            assert seen_etags == {
                e["id"]: e["etag"]
                for e in emu.events(cal, include_cancelled=True)
                if e["status"] != "cancelled"
            }
            stored = await sync.store_service.async_list_events(
                __import__("gcal_sync.api", fromlist=["x"]).LocalListEventsRequest(
                    start_time=__import__("datetime").datetime(2029, 1, 1)
                )
            )
            assert {e.id for e in stored.events} == {
                e["id"] for e in emu.events(cal, include_cancelled=False)
            }

    asyncio.run(run())


class _Hook(BaseHTTPRequestHandler):
    got: list[dict[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Hook.got.append(dict(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_watch_notifications(emu: Any, svc: Any) -> None:
    _Hook.got = []
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        addr = f"http://127.0.0.1:{hook.server_address[1]}/notify"
        ch = (
            svc.events()
            .watch(
                calendarId="primary",
                body={
                    "id": "chan-1",
                    "type": "web_hook",
                    "address": addr,
                    "token": "secret-token",
                    "params": {"ttl": "3600"},
                },
            )
            .execute()
        )
        assert ch["kind"] == "api#channel" and ch["id"] == "chan-1" and ch["token"] == "secret-token"
        assert int(ch["expiration"]) > time.time() * 1000
        emu.insert_event("primary", timed())
        emu.drop_notifications(1)
        emu.insert_event("primary", timed())
        emu.insert_event("primary", timed())
        assert emu.hub.wait_idle()
        states = [(h["X-Goog-Resource-State"], h["X-Goog-Message-Number"]) for h in _Hook.got]
        assert states == [("sync", "1"), ("exists", "2"), ("exists", "4")]
        h = _Hook.got[0]
        assert h["X-Goog-Channel-ID"] == "chan-1" and h["X-Goog-Channel-Token"] == "secret-token"
        assert h["X-Goog-Resource-ID"] == ch["resourceId"] and h["X-Goog-Resource-URI"] == ch["resourceUri"]
        assert h["X-Goog-Channel-Expiration"].endswith(" GMT")
        assert [c["id"] for c in emu.channels()] == ["chan-1"]
        svc.channels().stop(body={"id": "chan-1", "resourceId": ch["resourceId"]}).execute()
        from googleapiclient.errors import HttpError

        with pytest.raises(HttpError) as info:
            svc.channels().stop(body={"id": "chan-1", "resourceId": ch["resourceId"]}).execute()
        assert info.value.status_code == 404
        svc.events().watch(
            calendarId="primary",
            body={"id": "chan-2", "type": "web_hook", "address": addr, "params": {"ttl": "60"}},
        ).execute()
        assert emu.hub.wait_idle()
        emu.clock.advance(61)
        assert emu.channels() == []
        n = len(_Hook.got)
        emu.insert_event("primary", timed())
        assert emu.hub.wait_idle() and len(_Hook.got) == n
    finally:
        hook.shutdown()
        hook.server_close()


def test_cli_serves_seeds_and_saves_state(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "calendars": [
                    {
                        "id": "team@group.calendar.google.com",
                        "summary": "Team",
                        "owners": ["user@example.com"],
                        "events": [
                            {"kind": "calendar#event", "etag": '"1"', "id": "abcdef", "status": "cancelled"}
                        ],
                        "insert": [timed("hello")],
                    }
                ]
            }
        )
    )
    state = tmp_path / "state.json"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler.emulator",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        host = line.split("GOOGLE_CALENDAR_EMULATOR_HOST=")[1].strip()
        from emulator_helpers import build_service

        svc = build_service(f"http://{host}/calendar/v3/")
        items = svc.events().list(calendarId="team@group.calendar.google.com", showDeleted=True).execute()
        assert sorted(i.get("summary", i["status"]) for i in items["items"]) == ["cancelled", "hello"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    saved = json.loads(state.read_text())
    assert saved["calendars"][0]["id"] == "team@group.calendar.google.com"


def test_state_round_trip_keeps_sync_tokens(tmp_path: Path) -> None:
    from reconciler.emulator import Emulator, running_emulator
    from reconciler.emulator.persist import load, save

    emu = Emulator()
    emu.add_calendar("a@group.calendar.google.com")
    emu.insert_event("a@group.calendar.google.com", timed())
    with running_emulator(emu) as e1:
        from emulator_helpers import build_service

        token = (
            build_service(e1.base_url)
            .events()
            .list(calendarId="a@group.calendar.google.com")
            .execute()["nextSyncToken"]
        )
    save(emu, tmp_path / "s.json")
    emu2 = Emulator()
    load(emu2, tmp_path / "s.json")
    emu2.insert_event("a@group.calendar.google.com", timed("after"))
    with running_emulator(emu2) as e2:
        page = (
            build_service(e2.base_url)
            .events()
            .list(calendarId="a@group.calendar.google.com", syncToken=token)
            .execute()
        )
    assert [i["summary"] for i in page["items"]] == ["after"]


def test_control_api_over_http(emu: Any) -> None:
    import urllib.request

    def call(op: str, **kw: Any) -> Any:
        req = urllib.request.Request(
            f"http://{emu.host}/_emulator/{op}", json.dumps(kw).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())

    call("add_calendar", calendar_id="x@group.calendar.google.com", owners=["user@example.com"])
    ev = call("insert_event", calendar_id="x@group.calendar.google.com", body=timed("via http"))
    call(
        "put_raw", calendar_id="x@group.calendar.google.com", resource={"id": "raw01", "status": "cancelled"}
    )
    assert [e["id"] for e in call("events", calendar_id="x@group.calendar.google.com")] == sorted(
        [ev["id"], "raw01"]
    )
    call("inject_fault", calendar_id=None, status=503, methods=["events.list"])
    assert call("clock", advance=3600)["now"]
    assert any(c["id"] == "x@group.calendar.google.com" for c in call("dump")["calendars"])
    assert isinstance(call("requests"), list)

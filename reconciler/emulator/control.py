"""The control API over HTTP: ``/_emulator/<operation>`` with JSON in and out.

Lets tests in other processes (or other languages) drive the emulator the same
way in-process tests call :class:`~reconciler.emulator.Emulator` methods. The
JSON body (or query string) holds the keyword arguments of the method of the
same name; see ``OPERATIONS``. ``GET /_emulator/clock`` reads the clock and
``POST /_emulator/clock {"set": ISO} | {"advance": seconds}`` moves it.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from . import errors
from .clock import parse_rfc3339

if TYPE_CHECKING:
    from .emulator import Emulator

OPERATIONS = frozenset(
    {
        "add_calendar",
        "remove_calendar",
        "share",
        "unshare",
        "insert_event",
        "patch_event",
        "update_event",
        "delete_event",
        "get_event",
        "put_raw",
        "seed_raw",
        "events",
        "dump",
        "expire_tokens",
        "inject_fault",
        "clear_faults",
        "empty_pages",
        "revoke_refresh_token",
        "revoke_access_token",
        "channels",
        "drop_notifications",
        "pause_notifications",
        "resume_notifications",
        "deliveries",
        "clear_request_log",
        "set_latency",
        "concurrency",
    }
)
# Answered by handle_control itself, not by an Emulator method of the same name.
BUILT_IN = frozenset({"clock", "requests"})


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, default=str).encode()


def handle_control(emu: Emulator, http_method: str, op: str, query: str, body: bytes) -> tuple[int, bytes]:
    """Run one control operation; returns (HTTP status, JSON body)."""
    kwargs: dict[str, Any] = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
    if body:
        try:
            loaded = json.loads(body)
        except ValueError:
            return 400, _json({"error": "body is not JSON"})
        if not isinstance(loaded, dict):
            return 400, _json({"error": "body must be a JSON object of keyword arguments"})
        kwargs.update(loaded)
    op = op.strip("/")
    try:
        if op == "requests":
            return 200, _json([r.as_dict() for r in emu.request_log])
        if op == "clock":
            if "set" in kwargs:
                emu.clock.set(parse_rfc3339(str(kwargs["set"])))
            if "advance" in kwargs:
                emu.clock.advance(float(kwargs["advance"]))
            return 200, _json({"now": emu.clock.now().isoformat()})
        if op not in OPERATIONS:
            return 404, _json({"error": f"unknown operation {op!r}",
                               "operations": sorted(OPERATIONS | BUILT_IN)})
        result = getattr(emu, op)(**kwargs)
        if op == "inject_fault":
            result = {"armed": True}
        return 200, _json({} if result is None else result)
    except errors.ApiError as exc:
        return exc.code, exc.body_bytes()
    except (TypeError, ValueError, KeyError) as exc:
        return 400, _json({"error": str(exc)})

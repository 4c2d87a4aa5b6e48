"""The HTTP front end: Calendar v3 routes, the OAuth endpoints and ``/_emulator/``.

A standard-library ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive;
every response is written in one ``write`` with an exact Content-Length, so a
google-api-python-client (httplib2) or aiohttp client reuses its connection.
Injected faults are applied here, after routing and before the handler runs.

Threading model: one thread per connection (``ThreadingHTTPServer``), so every
client connection is served concurrently. Configured latency
(:meth:`Emulator.set_latency`) and ``stall`` faults sleep in that connection's
thread, after the answer is computed and with no lock held, so delayed requests
overlap; the sleep ends early when the server stops. Every request except the
``/_emulator/`` control API is delayed and counted in ``Emulator.in_flight``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import errors
from .control import handle_control
from .emulator import Emulator, RequestRecord
from .faults import BODY_KINDS, Fault, hostile_body
from .oauth import form_with_basic_auth

OAUTH_AUTHORIZE_PATH = "/o/oauth2/auth"

API_PREFIX = "/calendar/v3/"
JSON_TYPE = "application/json; charset=UTF-8"
_REASONS = {
    200: "OK",
    302: "Found",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class _Drop(Exception):
    """Close the connection without answering (injected fault)."""


class EmulatorServer(ThreadingHTTPServer):
    """Threaded HTTP server bound to one :class:`Emulator`; tracks sockets for shutdown."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        """Bind to ``address`` and serve ``emulator``."""
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self._sock_lock = threading.Lock()
        self.stopping = threading.Event()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the socket so :meth:`close_all` can end idle keep-alive connections."""
        with self._sock_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the socket once its connection is finished."""
        with self._sock_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about connections cut by :meth:`close_all` while stopping."""
        if not self.stopping.is_set():
            super().handle_error(request, client_address)

    def close_all(self) -> None:
        """Wake sleeping handlers and shut down every open client connection."""
        self.stopping.set()
        with self._sock_lock:
            socks = list(self.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def route(method: str, parts: list[str]) -> tuple[str, str | None, str | None]:
    """Map an HTTP method and unquoted path segments to (API method, calendar id, event id)."""
    n = len(parts)
    if parts[:3] == ["users", "me", "calendarList"]:
        if n == 3 and method == "GET":
            return "calendarList.list", None, None
        if n == 4 and method == "GET":
            return "calendarList.get", parts[3], None
    elif parts and parts[0] == "calendars" and n >= 2:
        cal = parts[1]
        if n == 2 and method == "GET":
            return "calendars.get", cal, None
        if n == 3 and parts[2] == "events":
            if method == "GET":
                return "events.list", cal, None
            if method == "POST":
                return "events.insert", cal, None
        if n == 4 and parts[2] == "events":
            if parts[3] == "watch" and method == "POST":
                return "events.watch", cal, None
            op = {
                "GET": "events.get",
                "PATCH": "events.patch",
                "PUT": "events.update",
                "DELETE": "events.delete",
            }.get(method)
            if op:
                return op, cal, parts[3]
        if n == 5 and parts[2] == "events" and parts[4] == "instances" and method == "GET":
            return "events.instances", cal, parts[3]
    elif parts == ["channels", "stop"] and method == "POST":
        return "channels.stop", None, None
    return "unknown", None, None


class Handler(BaseHTTPRequestHandler):
    """One keep-alive connection; dispatches every request to the emulator."""

    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300
    server: EmulatorServer
    _delayed = False  # whether this request has had its latency already
    _counted = False  # whether this request is still counted in flight

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging (it would dominate benchmark time)."""

    def do_GET(self) -> None:
        """Dispatch GET."""
        self._serve()

    def do_POST(self) -> None:
        """Dispatch POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Dispatch PUT."""
        self._serve()

    def do_PATCH(self) -> None:
        """Dispatch PATCH."""
        self._serve()

    def do_DELETE(self) -> None:
        """Dispatch DELETE."""
        self._serve()

    def _serve(self) -> None:
        """Answer one request, counted in flight unless it is a control request."""
        self._delayed = False
        self._counted = not self.path.startswith("/_emulator/")
        if self._counted:
            self.server.emulator.in_flight.enter()
        try:
            self._handle()
        finally:
            self._uncount()

    def _uncount(self) -> None:
        """Stop counting this request as in flight (before its answer is written)."""
        if self._counted:
            self._counted = False
            self.server.emulator.in_flight.leave()

    def _wait(self, seconds: float) -> None:
        """Sleep without holding any lock; returns early when the server stops."""
        if seconds > 0:
            self.server.stopping.wait(seconds)

    def _delay(self, items: int) -> float:
        """Apply the configured latency once per request; returns the seconds waited for."""
        if self._delayed:
            return 0.0
        self._delayed = True
        seconds = self.server.emulator.latency.seconds(items)
        self._wait(seconds)
        return seconds

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = JSON_TYPE,
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: ESF",
            f"Content-Length: {len(body)}",
        ]
        if status != 204:
            lines.append(f"Content-Type: {content_type}")
        lines.append("Vary: Origin, X-Origin, Referer")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if self.close_connection:
            lines.append("Connection: close")
        if not self.path.startswith("/_emulator/"):
            self._delay(0)  # the token endpoint and unknown paths wait like the API does
        self._uncount()  # a client that has its answer sees the request finished
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)

    def _handle(self) -> None:
        emu = self.server.emulator
        url = urllib.parse.urlsplit(self.path)
        body = self._body()
        if url.path == "/token" and self.command == "POST":
            form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
            status, payload = emu.oauth_token(form_with_basic_auth(form, self.headers.get("Authorization")))
            self._send(status, json.dumps(payload).encode())
            return
        if url.path == OAUTH_AUTHORIZE_PATH and self.command == "GET":
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
            status, headers, payload = emu.oauth.authorize(query)
            self._send(status, json.dumps(payload).encode() if payload else b"", headers)
            return
        if url.path.startswith("/_emulator/"):
            status, out = handle_control(emu, self.command, url.path[len("/_emulator/") :], url.query, body)
            self._send(status, out)
            return
        if not url.path.startswith(API_PREFIX):
            self._send(404, errors.not_found().body_bytes())
            return
        self._api(emu, url, body)

    def _api(self, emu: Emulator, url: urllib.parse.SplitResult, body: bytes) -> None:
        start = time.monotonic()
        parts = [urllib.parse.unquote(p) for p in url.path[len(API_PREFIX) :].split("/") if p]
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        method, cal_id, event_id = route(self.command, parts)
        user = emu.default_user
        headers: dict[str, str] | None = None
        content_type = JSON_TYPE
        items = 0
        try:
            user = emu.user_for(self.headers.get("Authorization"))
            if cal_id == "primary":
                cal_id = user
            fault = self._fault(emu, cal_id, method)
            kind = fault.kind if fault is not None else None
            if kind in BODY_KINDS and kind != "truncated":
                out, content_type = hostile_body(str(kind), b"")
                status = 200
            else:
                repeat = kind == "repeat_page_token"
                out = self._call(emu, method, user, cal_id, event_id, params, body, repeat)
                items = getattr(out, "item_count", 0)
                status = 200 if out else 204
                if kind == "truncated":
                    out, content_type = hostile_body(kind, out)
                    status = 200
        except errors.ApiError as exc:
            status, out, headers = exc.code, exc.body_bytes(), exc.headers
        except _Drop:
            status, out = 0, b""
        except Exception:  # a bug in the emulator: answer like Google's backend would
            err = errors.fault_error(500, "backendError", None)
            status, out, headers = 500, err.body_bytes(), None
        delay = self._delay(items)
        # log before answering, so a client that reads the log right after its call sees it
        emu.record(
            RequestRecord(
                method,
                self.command,
                url.path,
                cal_id,
                params,
                user,
                start,
                time.monotonic(),
                status,
                threading.current_thread().name,
                delay,
            )
        )
        if status == 0:
            self._uncount()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(status, out, headers, content_type)

    def _fault(self, emu: Emulator, cal_id: str | None, method: str) -> Fault | None:
        """Apply the next armed fault; returns it when it shapes the answer instead."""
        fault = emu.faults.take(cal_id, method)
        if fault is None:
            return None
        if fault.kind == "stall":
            self._wait(fault.stall_seconds)
            return None
        if fault.kind == "drop":
            raise _Drop()
        if fault.kind == "status":
            raise errors.fault_error(fault.status, fault.reason, fault.retry_after)
        return fault

    @staticmethod
    def _call(
        emu: Emulator,
        method: str,
        user: str,
        cal_id: str | None,
        event_id: str | None,
        params: dict[str, list[str]],
        raw: bytes,
        repeat_page_token: bool = False,
    ) -> bytes:
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise errors.ApiError(400, "parseError", "Parse Error") from exc
        cal = cal_id or ""
        if method == "events.list":
            return emu.api_list_events(user, cal, params, repeat_page_token)
        if method == "events.get":
            return emu.api_get_event(user, cal, str(event_id))
        if method == "events.insert":
            return emu.api_write("insert", user, cal, None, body)
        if method == "events.patch":
            return emu.api_write("patch", user, cal, event_id, body)
        if method == "events.update":
            return emu.api_write("update", user, cal, event_id, body)
        if method == "events.delete":
            return emu.api_write("delete", user, cal, event_id, None)
        if method == "events.instances":
            return emu.api_instances(user, cal, str(event_id), params)
        if method == "events.watch":
            return emu.api_watch(user, cal, body)
        if method == "channels.stop":
            emu.api_stop(body)
            return b""
        if method == "calendarList.list":
            return emu.api_calendar_list(user, params)
        if method == "calendarList.get":
            return emu.api_calendar_list_get(user, cal)
        if method == "calendars.get":
            return emu.api_calendar_get(user, cal)
        raise errors.not_found()


class ServerHandle:
    """A started server: the bound address plus a clean ``stop()``."""

    def __init__(self, emu: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind (port 0 picks a free port) and start serving in a daemon thread."""
        self.emulator = emu
        self.server = EmulatorServer((host, port), emu)
        bound_host, bound_port = self.server.server_address[:2]
        shown = bound_host if isinstance(bound_host, str) else bound_host.decode()
        emu.host = f"{shown}:{bound_port}"
        emu.base_url = f"http://{emu.host}{API_PREFIX}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="emulator-http",
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        """Stop accepting, close open connections and background threads."""
        self.server.shutdown()
        self.server.close_all()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.emulator.close()


@contextlib.contextmanager
def running_emulator(
    emu: Emulator | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[Emulator]:
    """Serve ``emu`` (a fresh :class:`Emulator` if None) over HTTP for the ``with`` block."""
    emu = emu if emu is not None else Emulator()
    handle = ServerHandle(emu, host, port)
    try:
        yield emu
    finally:
        handle.stop()

"""Push notification channels (events.watch / channels.stop) and their delivery.

Real HTTP POSTs with an empty body and Google's ``X-Goog-*`` headers are sent
from one background daemon thread: ``sync`` once when a channel opens, then
``exists`` for every change of the watched calendar, until the channel is
stopped or expires (emulator clock). Failures are ignored, as Google does; tests
can pause delivery or drop notifications to simulate lost hints.
"""

from __future__ import annotations

import http.client
import queue
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .clock import Clock, rfc1123

DEFAULT_TTL = 7 * 24 * 3600


@dataclass
class Channel:
    """One open watch channel."""

    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    address: str
    token: str | None
    expiration_ms: int
    user: str
    message_number: int = 0

    def as_resource(self) -> dict[str, Any]:
        """The ``api#channel`` resource Google answers events.watch with."""
        res: dict[str, Any] = {
            "kind": "api#channel",
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
        }
        if self.token is not None:
            res["token"] = self.token
        res["expiration"] = str(self.expiration_ms)
        return res


@dataclass
class Delivery:
    """What happened to one notification (for tests)."""

    channel_id: str
    message_number: int
    state: str
    address: str
    status: int | None = None
    error: str | None = None
    dropped: bool = False
    at: float = field(default_factory=time.monotonic)


class ChannelHub:
    """Open channels plus the background notifier thread."""

    def __init__(self, clock: Clock) -> None:
        """Create the hub; the delivery thread starts on the first notification."""
        self.clock = clock
        self._channels: dict[str, Channel] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Channel, int, str] | None] = queue.Queue()
        self._running = threading.Event()
        self._running.set()
        self._drop = 0
        self.deliveries: list[Delivery] = []
        self._thread: threading.Thread | None = None

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._worker, name="emulator-notifier", daemon=True)
            self._thread.start()

    def open(self, calendar_id: str, body: Any, resource_uri: str, user: str) -> dict[str, Any]:
        """events.watch: validate ``body``, open the channel, queue the ``sync`` message."""
        if not isinstance(body, dict):
            raise errors.bad_request("Request body must be an object.")
        cid = body.get("id")
        if not isinstance(cid, str) or not cid or len(cid) > 64:
            raise errors.invalid("Invalid channel id.", "id", "parameter")
        if body.get("type") not in ("web_hook", "webhook"):
            raise errors.invalid("Invalid channel type.", "type", "parameter")
        address = body.get("address")
        if not isinstance(address, str):
            raise errors.invalid("Invalid address.", "address", "parameter")
        parsed = urllib.parse.urlsplit(address)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise errors.invalid("Invalid address.", "address", "parameter")
        token = body.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            raise errors.invalid("Invalid channel token.", "token", "parameter")
        ttl = DEFAULT_TTL
        params = body.get("params") or {}
        if isinstance(params, dict) and params.get("ttl") is not None:
            try:
                ttl = int(params["ttl"])
            except (TypeError, ValueError) as exc:
                raise errors.invalid("Invalid ttl value.", "params.ttl") from exc
        now = self.clock.now_ms()
        with self._lock:
            self._expire(now)
            if cid in self._channels:
                raise errors.ApiError(400, "channelIdNotUnique", "Channel id not unique.")
            ch = Channel(
                cid,
                secrets.token_urlsafe(18),
                resource_uri,
                calendar_id,
                address,
                token,
                now + ttl * 1000,
                user,
            )
            self._channels[cid] = ch
            self._enqueue(ch, "sync")
        return ch.as_resource()

    def stop(self, body: Any) -> None:
        """channels.stop: close the channel named by ``{id, resourceId}`` or 404."""
        if not isinstance(body, dict):
            raise errors.bad_request("Request body must be an object.")
        with self._lock:
            ch = self._channels.get(str(body.get("id")))
            if ch is None or ch.resource_id != body.get("resourceId"):
                raise errors.not_found()
            del self._channels[ch.id]

    def _expire(self, now_ms: int) -> None:
        for cid in [c.id for c in self._channels.values() if c.expiration_ms <= now_ms]:
            del self._channels[cid]

    def _enqueue(self, ch: Channel, state: str) -> None:
        n = ch.message_number = ch.message_number + 1
        if self._drop > 0:
            self._drop -= 1
            self.deliveries.append(Delivery(ch.id, n, state, ch.address, dropped=True))
            return
        self._ensure_thread()
        self._queue.put((ch, n, state))

    def notify(self, calendar_id: str) -> None:
        """Queue an ``exists`` message on every live channel watching ``calendar_id``."""
        with self._lock:
            if not self._channels:
                return
            self._expire(self.clock.now_ms())
            for ch in list(self._channels.values()):
                if ch.calendar_id == calendar_id:
                    self._enqueue(ch, "exists")

    def channels(self) -> list[dict[str, Any]]:
        """Every open channel, with the calendar, address and messages sent so far."""
        with self._lock:
            self._expire(self.clock.now_ms())
            return [
                dict(
                    c.as_resource(),
                    calendarId=c.calendar_id,
                    address=c.address,
                    messageNumber=c.message_number,
                    user=c.user,
                )
                for c in self._channels.values()
            ]

    def drop_notifications(self, n: int) -> None:
        """Silently lose the next ``n`` notifications (any channel)."""
        with self._lock:
            self._drop += n

    def pause(self) -> None:
        """Hold deliveries (they queue up) until :meth:`resume`."""
        self._running.clear()

    def resume(self) -> None:
        """Deliver held and future notifications again."""
        self._running.set()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until the delivery queue is empty (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Stop the delivery thread."""
        self._running.set()
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._running.wait()
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, ch: Channel, number: int, state: str) -> None:
        rec = Delivery(ch.id, number, state, ch.address)
        url = urllib.parse.urlsplit(ch.address)
        conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        headers = {
            "Content-Type": "application/json; utf-8",
            "Content-Length": "0",
            "X-Goog-Channel-ID": ch.id,
            "X-Goog-Message-Number": str(number),
            "X-Goog-Resource-ID": ch.resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Resource-URI": ch.resource_uri,
            "X-Goog-Channel-Expiration": rfc1123(ch.expiration_ms),
        }
        if ch.token is not None:
            headers["X-Goog-Channel-Token"] = ch.token
        try:
            conn = conn_cls(url.hostname or "", url.port, timeout=5)
            path = url.path or "/"
            if url.query:
                path += "?" + url.query
            conn.request("POST", path, body=b"", headers=headers)
            resp = conn.getresponse()
            resp.read()
            rec.status = resp.status
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            rec.error = repr(exc)
        self.deliveries.append(rec)

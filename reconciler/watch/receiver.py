"""The push-notification receiver: a WSGI app that turns valid hints into "sync soon".

Mount :func:`make_app` in any WSGI stack, or let ``reconciler receiver`` /
``reconciler run`` serve it with waitress. It answers on the path of
``[watch] address`` and on ``/`` (so it also works mounted under a prefix), plus
``GET /healthz``. Checks, cheapest first, and nothing here ever calls Google:

* not POST -> 405; a body over :data:`MAX_BODY` bytes -> 413 (a notification
  has none); no channel id (or one that is not printable ASCII of at most 64
  characters) or a message number that is not 1 to 19 ASCII digits below
  2**63 (the column is a signed 64-bit integer) -> 400;
* token not the HMAC of the channel id (constant-time; no database query) ->
  403 (:data:`REJECTED`), whether or not the channel exists, so a forger (who
  has no secret) gets one answer and cannot tell which channels exist;
* a valid token for a channel id that is not a live channel in the ``channel``
  table (a stopped or replaced channel of ours; only the secret's holder can
  make one) -> 404, as the interface contract says;
  resource id not the channel's -> 403;
* message number not above the last one seen (duplicate, replay, out of
  order), or more than :data:`MAX_MESSAGE_JUMP` above it -> 200, ignored;
  ``sync`` (the channel's first message) -> 200, ignored;
* otherwise -> 200 and, through :class:`HintThrottle`, ``request_sync``.

Hostile input never costs more than a cheap answer: rejections are logged
through :class:`RateLimitedLog` (one line per kind every
:data:`WARN_EVERY` seconds, with a count of the ones not logged), and an
unexpected error is one ERROR line and a 500, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from reconciler.config import Config
from reconciler.errors import ConfigError, StoreError, first_line
from reconciler.store import calendars as calendar_store
from reconciler.store import close_thread_connection, is_open
from reconciler.store.dberrors import map_db_errors
from reconciler.watch import channels
from reconciler.watch.throttle import HintThrottle, RateLimitedLog
from reconciler.watch.tokens import MAX_CHANNEL_ID, token_matches

log = logging.getLogger("reconciler.watch")

MAX_BODY = 4096
MAX_HEADERS = 8192
MAX_MESSAGE_NUMBER = 2**63 - 1  # channel.last_message_number is a signed BIGINT
# How far past the last seen message number a new one may be. Google's numbers
# grow but are not sequential; a sender holding a captured token could otherwise
# send 2**63-1 once and have every real notification ignored as "out of order"
# until the channel is renewed. A message beyond the bound is ignored (200), not
# recorded; polling still picks up the change it announced.
MAX_MESSAGE_JUMP = 1_000_000
# One answer for every forged token, whatever channel it names (same status, same body).
Answer = tuple[str, bytes, list[tuple[str, str]]]
REJECTED: Answer = ("403 Forbidden", b"bad token\n", [])
UNKNOWN: Answer = ("404 Not Found", b"unknown channel\n", [])
WARN_EVERY = 60.0  # seconds between two log lines about the same kind of rejection
StartResponse = Callable[..., Any]


class Receiver:
    """The WSGI callable; one per process (it owns the hint throttle)."""

    def __init__(self, secret: str, paths: Iterable[str], *, hint_window: float = 1.0,
                 request_sync: Callable[[int], None] = calendar_store.request_sync) -> None:
        self._secret = secret
        self.paths = {_norm(p) for p in paths} | {"/"}
        self.throttle = HintThrottle(request_sync, window=hint_window)
        self.accepted = 0  # valid `exists` hints (before coalescing)
        self.warnings = RateLimitedLog(log, WARN_EVERY)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        try:
            status, body, extra = self._handle(environ)
        except Exception as exc:  # a bug: one line, a 500, no traceback to the client or log
            self.warnings.log("error", logging.ERROR,
                              "watch: could not handle a notification (%s: %s)",
                              type(exc).__name__, first_line(exc))
            status, body, extra = "500 Internal Server Error", b"internal error\n", []
        headers = [("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body))), *extra]
        start_response(status, headers)
        return [body]

    def _handle(self, environ: dict[str, Any]) -> tuple[str, bytes, list[tuple[str, str]]]:
        path = environ.get("PATH_INFO") or "/"
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if path.rstrip("/") == "/healthz":
            if method in ("GET", "HEAD"):
                return "200 OK", b"ok\n", []
            return "405 Method Not Allowed", b"use GET\n", [("Allow", "GET, HEAD")]
        if _norm(path) not in self.paths:
            return "404 Not Found", b"not found\n", []
        if method != "POST":
            return "405 Method Not Allowed", b"notifications are POSTed\n", [("Allow", "POST")]
        length_text = str(environ.get("CONTENT_LENGTH") or "0").strip() or "0"
        if not (length_text.isascii() and length_text.isdigit()):
            return "400 Bad Request", b"bad Content-Length\n", []
        length = int(length_text)
        if length > MAX_BODY:
            return "413 Content Too Large", b"a notification has no body\n", []
        if length:
            environ["wsgi.input"].read(length)
        channel_id = environ.get("HTTP_X_GOOG_CHANNEL_ID") or ""
        number_text = (environ.get("HTTP_X_GOOG_MESSAGE_NUMBER") or "").strip()
        number = parse_message_number(number_text)
        if not valid_channel_id(channel_id) or number is None:
            self.warnings.log("malformed", logging.INFO,
                              "watch: malformed notification rejected (400)")
            return "400 Bad Request", b"not a channel notification\n", []
        if not token_matches(self._secret, channel_id, environ.get("HTTP_X_GOOG_CHANNEL_TOKEN")):
            # Checked before the database: a forgery costs no query, and gets the same
            # answer for a live channel and for one that does not exist.
            self.warnings.log("token", logging.WARNING,
                              "watch: notification with a wrong token for channel %s rejected "
                              "(403)", channel_id[:MAX_CHANNEL_ID])
            return REJECTED
        try:
            with map_db_errors():
                return self._notification(environ, channel_id, number)
        except StoreError as exc:
            log.warning("watch: database error while handling a notification: %s", exc)
            close_thread_connection()
            return "503 Service Unavailable", b"database unavailable\n", [("Retry-After", "5")]

    def _notification(self, environ: dict[str, Any], channel_id: str,
                      number: int) -> tuple[str, bytes, list[tuple[str, str]]]:
        row = channels.find(channel_id)
        if row is None or row.state not in channels.LIVE_STATES:
            self.warnings.log("unknown", logging.INFO,
                              "watch: notification for unknown channel rejected (404)")
            return UNKNOWN
        resource_id = environ.get("HTTP_X_GOOG_RESOURCE_ID")
        if row.resource_id is not None and resource_id != row.resource_id:
            self.warnings.log("resource", logging.WARNING,
                              "watch: notification with a wrong resource id for channel %s "
                              "rejected (403)", channel_id)
            return "403 Forbidden", b"resource id does not match the channel\n", []
        if number - (row.last_message_number or 0) > MAX_MESSAGE_JUMP:
            self.warnings.log("jump", logging.WARNING,
                              "watch: channel %s message %d jumps more than %d past the last "
                              "one (%d); ignored", channel_id, number, MAX_MESSAGE_JUMP,
                              row.last_message_number or 0)
            return "200 OK", b"ignored: message number out of range\n", []
        if not channels.advance_message(row.id, number, MAX_MESSAGE_JUMP):
            log.debug("watch: channel %s message %d is a duplicate or out of order; ignored",
                      channel_id, number)
            return "200 OK", b"ignored: duplicate or out of order\n", []
        state = (environ.get("HTTP_X_GOOG_RESOURCE_STATE") or "").strip().lower()
        if state == "sync":
            return "200 OK", b"ignored: sync\n", []
        self.accepted += 1
        self.throttle.hint(int(row.calendar_id))
        log.debug("watch: hint for calendar row %s (channel %s message %d)", row.calendar_id,
                  channel_id, number)
        return "200 OK", b"ok\n", []

    def close(self) -> None:
        """Make pending trailing sync requests and stop the throttle thread."""
        self.throttle.close()


def parse_message_number(text: str) -> int | None:
    """``X-Goog-Message-Number`` as an int, or None unless it is 1-19 ASCII digits < 2**63.

    ``str.isdigit`` alone accepts ``"²"`` and other Unicode digits that ``int``
    refuses, and a number past the BIGINT column would fail in the database.
    """
    if not text or len(text) > 19 or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= MAX_MESSAGE_NUMBER else None


def valid_channel_id(channel_id: str) -> bool:
    """A channel id we could have made: printable ASCII, at most 64 characters."""
    return (0 < len(channel_id) <= MAX_CHANNEL_ID and channel_id.isascii()
            and channel_id.isprintable())


def _norm(path: str) -> str:
    return "/" + path.strip("/") if path.strip("/") else "/"


def hook_path(address: str | None) -> str:
    """The path Google POSTs to: the path of ``[watch] address`` (``/`` when it has none)."""
    return _norm(urlsplit(address or "").path or "/")


def make_app(config: Config, *, hint_window: float = 1.0) -> Receiver:
    """The receiver as a WSGI callable for ``config`` (opens the store if not yet open)."""
    secret = config.watch.secret
    if not secret:
        raise ConfigError("watch.secret is required to receive notifications "
                          f"(in {config.path or 'the config'})")
    if not is_open():
        from reconciler.store import open_store

        open_store(config.database.url)
    return Receiver(secret, [hook_path(config.watch.address)], hint_window=hint_window)

"""Serve the receiver with waitress, in a background thread or in the foreground.

waitress is a production WSGI server: it parses HTTP itself, bounds request
headers and bodies (a notification has no body, so both limits are small), and
runs the app on a few worker threads. ``port = 0`` binds a free port (tests).

Slow clients (slowloris) cannot starve good ones:

* reading requests is asynchronous (poll(2), not select(2), so descriptors
  above 1024 work) and costs no worker thread;
* up to :func:`connection_limit` connections are kept open (hundreds of slow
  sockets leave room for Google's requests);
* an idle connection is closed after :data:`CHANNEL_TIMEOUT` seconds, and one
  whose request is still incomplete after :data:`REQUEST_DEADLINE` seconds
  (a client trickling a header byte at a time) is closed too; both checked
  every :data:`CLEANUP_INTERVAL` seconds.

docs/watch.md still advises a reverse proxy in front for anything public.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from reconciler.dburl import parse_host_port
from reconciler.errors import ConfigError
from reconciler.watch.receiver import MAX_BODY, MAX_HEADERS

log = logging.getLogger("reconciler.watch")
POLL_SECONDS = 0.2  # how long the idle loop waits before checking for stop()
CHANNEL_TIMEOUT = 10  # seconds an idle connection stays open
REQUEST_DEADLINE = 10.0  # seconds a client may take to send one whole request
CLEANUP_INTERVAL = 2  # seconds between two sweeps for idle or too-slow connections
MAX_CONNECTIONS = 1000


def connection_limit() -> int:
    """Open connections to allow: :data:`MAX_CONNECTIONS`, or half the descriptor limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(50, min(MAX_CONNECTIONS, soft // 2))


class _SlowRequestSweeper:
    """Closes connections whose request stays incomplete past a deadline.

    waitress closes idle connections, but a client that sends one header byte
    every few seconds is never idle. A request object that is still being
    parsed at two sweeps ``deadline`` seconds apart belongs to such a client.
    """

    def __init__(self, server: Any, deadline: float) -> None:
        self._server = server
        self._deadline = deadline
        self._seen: dict[int, tuple[int, float]] = {}  # fd -> (id(request), first seen)
        self._maintenance = server.maintenance
        server.maintenance = self.maintenance

    def maintenance(self, now: float) -> None:
        self._maintenance(now)
        mono = time.monotonic()
        seen: dict[int, tuple[int, float]] = {}
        for fd, channel in list(self._server.active_channels.items()):
            request = getattr(channel, "request", None)
            if request is None or channel.requests:
                continue
            known = self._seen.get(fd)
            first = known[1] if known is not None and known[0] == id(request) else mono
            if mono - first > self._deadline:
                channel.will_close = True
            else:
                seen[fd] = (id(request), first)
        self._seen = seen


def parse_listen(listen: str, what: str = "watch.listen") -> tuple[str, int]:
    """Split ``host:port`` or ``[v6]:port`` (port 0: any free port); a malformed
    value is a one-line ConfigError."""
    parsed = parse_host_port(listen, allow_zero=True)
    if parsed is None:
        raise ConfigError(f"{what}: must be host:port (e.g. 127.0.0.1:8086), got {listen!r}")
    return parsed


class ReceiverServer:
    """waitress around a WSGI app; :meth:`start` serves from a daemon thread."""

    def __init__(self, app: Any, host: str, port: int, *, threads: int = 4) -> None:
        try:
            self._server: Any = create_server(
                app, host=host, port=port, threads=threads, ident="reconciler",
                max_request_header_size=MAX_HEADERS, max_request_body_size=MAX_BODY,
                channel_timeout=CHANNEL_TIMEOUT, cleanup_interval=CLEANUP_INTERVAL,
                connection_limit=connection_limit(), backlog=1024,
                clear_untrusted_proxy_headers=True)
        except OSError as exc:
            raise ConfigError(f"watch.listen {host}:{port}: cannot bind ({exc.strerror or exc})"
                              ) from exc
        _SlowRequestSweeper(self._server, REQUEST_DEADLINE)
        self.host = host
        self.port = int(self._server.effective_port)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        """``http://host:port`` the server answers on."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Serve from a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self.serve_forever, name="watch-receiver",
                                        daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` is called from another.

        The loop polls in short rounds and closes its sockets itself when asked
        to stop, so no file descriptor is ever closed from another thread (a
        descriptor closed twice could be a newer socket of someone else's).
        """
        log.info("watch: receiver listening on %s", self.url)
        server = self._server
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=POLL_SECONDS, map=server._map, count=1, use_poll=True)
        finally:
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            wasyncore.close_all(server._map)

    def stop(self) -> None:
        """Stop accepting, wait for requests in flight (5 s at most) and close."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        else:
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            wasyncore.close_all(self._server._map)

"""The edges of a ``run`` process: signal handlers, the HTTP endpoint, the watch runtime.

Started after the calendar set is known and stopped at shutdown, in one
place, so the daemon's loop only sees flags. Signal handlers only set flags
(safe in a handler); the loop acts on them. A port that cannot be bound is
one line naming ``metrics.port``; a watch runtime that cannot start leaves
the process polling, said once.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.config import Config
from reconciler.daemon.metrics import HealthServer, Metrics
from reconciler.errors import ReconcilerError
from reconciler.service import Service

log = logging.getLogger("reconciler.daemon")

WATCH_TICK_SECONDS = 5.0


class Flags:
    """Stop and reload requests, set from signal handlers, read by the main loop."""

    def __init__(self) -> None:
        self.stop = False
        self.reload = False

    def install(self) -> None:
        """SIGTERM and SIGINT ask to stop, SIGHUP to reload the config."""
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
        signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.request_reload())

    def request_stop(self) -> None:
        """Ask the main loop to shut down (sets a flag only)."""
        self.stop = True

    def request_reload(self) -> None:
        """Ask the main loop to reload the config (sets a flag only)."""
        self.reload = True


class Edges:
    """The HTTP endpoint and the watch runtime of one process."""

    def __init__(self) -> None:
        self.http: HealthServer | None = None
        self.runtime: Any = None

    def start_http(self, config: Config, metrics: Metrics,
                   health: Callable[[], tuple[bool, dict[str, Any]]],
                   on_database_lost: Callable[[BaseException], None] | None = None) -> None:
        """Serve ``/metrics`` and ``/healthz`` when ``[metrics] port`` is set."""
        host, port = config.metrics.host, config.metrics.port
        if not port:
            return
        try:
            self.http = HealthServer(host, port, metrics, health, on_database_lost)
        except OSError as exc:
            raise ReconcilerError(f"metrics.port: cannot listen on {host}:{port}: "
                                  f"{exc.strerror or exc}") from None
        self.http.start()
        log.info("metrics on http://%s:%d/metrics, health on /healthz", host, self.http.port)

    def start_watch(self, service: Service, config: Config, scheduler: BaseScheduler) -> bool:
        """Start the watch runtime (on ``service``) and its tick; False when polling only."""
        if not config.watch.enabled:
            return False
        try:
            from reconciler.watch.runtime import WatchRuntime  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            log.warning("watch.enabled is set but the watch runtime is not available (%s); "
                        "polling only", exc)
            return False
        try:
            runtime = WatchRuntime(service, config)
            runtime.start()
        except Exception as exc:
            log.error("watch runtime did not start (%s); polling only", exc)
            return False
        self.runtime = runtime
        scheduler.add_job(self._watch_tick, IntervalTrigger(seconds=WATCH_TICK_SECONDS),
                          id="control:watch", executor="control")
        return True

    def _watch_tick(self) -> None:
        if self.runtime is None:
            return
        try:
            self.runtime.tick()
        except Exception as exc:
            log.warning("watch runtime tick failed: %s", exc)

    def stop_watch(self) -> None:
        """Stop the watch runtime (channels, receiver)."""
        if self.runtime is None:
            return
        try:
            self.runtime.stop()
        except Exception as exc:
            log.warning("watch runtime did not stop cleanly: %s", exc)

    def stop_http(self) -> None:
        """Stop serving and close the socket."""
        if self.http is not None:
            self.http.stop()

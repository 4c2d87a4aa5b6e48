"""What ``reconciler run`` drives when ``[watch] enabled``: receiver plus channel upkeep.

The run loop calls :meth:`WatchRuntime.start` once (the receiver begins
serving on ``[watch] listen``), :meth:`WatchRuntime.tick` every few seconds
(channels opened, renewed, stopped) and :meth:`WatchRuntime.stop` on SIGTERM
(this process's channels are stopped; another worker reopens them). A failing
tick is logged and never stops the poller: watch mode is only a hint.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from reconciler.clock import utcnow
from reconciler.config import Config
from reconciler.watch.manager import ChannelManager, TickReport
from reconciler.watch.receiver import Receiver, make_app
from reconciler.watch.server import ReceiverServer, parse_listen

if TYPE_CHECKING:
    from reconciler.service import Service

log = logging.getLogger("reconciler.watch")


class WatchRuntime:
    """The receiver thread and the channel manager of one ``run`` process."""

    def __init__(self, service: Service, config: Config, *,
                 now: Callable[[], dt.datetime] = utcnow, hint_window: float = 1.0,
                 serve: bool = True) -> None:
        self.service = service
        self.config = config
        self.manager = ChannelManager(config, service.owner, service.pool.for_account, now=now)
        self.hint_window = hint_window
        self.serve = serve
        self.app: Receiver | None = None
        self.server: ReceiverServer | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Begin serving notifications on ``[watch] listen`` (unless ``serve=False``)."""
        if not self.serve:
            return
        self.app = make_app(self.config, hint_window=self.hint_window)
        host, port = parse_listen(self.config.watch.listen)
        self.server = ReceiverServer(self.app, host, port)
        self.server.start()

    def tick(self) -> TickReport:
        """One round of channel upkeep; errors are logged, never raised."""
        with self._lock:
            try:
                report = self.manager.tick()
            except Exception as exc:
                log.warning("watch: channel upkeep failed this round (%s); polling goes on", exc)
                return TickReport()
        if report.opened or report.renewed or report.stopped or report.failed:
            log.debug("watch tick: %s", report)
        return report

    def stop(self) -> list[str]:
        """Stop serving and stop every channel this process owns; returns their ids."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.app is not None:
            self.app.close()
        with self._lock:
            try:
                stopped = self.manager.stop_owned()
            except Exception as exc:
                log.warning("watch: could not stop this process's channels (%s); they expire "
                            "on their own", exc)
                return []
        if stopped:
            log.info("watch: stopped %d channel(s) owned by this process", len(stopped))
        return stopped

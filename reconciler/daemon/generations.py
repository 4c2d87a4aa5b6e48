"""Service generations across SIGHUP reloads: borrow the current one, retire, close.

A reload builds a new :class:`~reconciler.service.Service` (API handles, HTTP
connections, thread pools) for the new config. Passes that started on the
old one finish on it: each pass *borrows* the current generation, and a
replaced generation closes (releasing its leases) when its last borrower
returns it. One generation may be *pinned* (the watch runtime keeps the
service it started with): it stays open until shutdown. Every generation's
lease owner id belongs to this process until it closes (:meth:`owners`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from reconciler.config import Config
from reconciler.errors import ReconcilerError
from reconciler.service import Service
from reconciler.store import leases

log = logging.getLogger("reconciler.daemon")


class Generations:
    """The current service and the replaced ones still in use."""

    def __init__(self, config: Config, build: Callable[[Config], Service]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._uses: dict[int, int] = {}
        self._retired: list[Service] = []
        self._pinned: Service | None = None
        self.config = config
        self.current = build(config)
        self._open: list[Service] = [self.current]

    def owners(self) -> list[str]:
        """Lease owner ids of this process (one per open generation)."""
        with self._lock:
            return [svc.owner for svc in self._open]

    def open(self) -> list[Service]:
        """Every generation not closed yet."""
        with self._lock:
            return list(self._open)

    def pin(self, svc: Service) -> None:
        """Keep ``svc`` open until :meth:`close_all` even when replaced (the watch runtime's)."""
        with self._lock:
            self._pinned = svc

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Service]:
        """The current service for one pass; a replaced one closes when its last pass ends."""
        with self._lock:
            svc = self.current
            self._uses[id(svc)] = self._uses.get(id(svc), 0) + 1
        try:
            yield svc
        finally:
            close = False
            with self._lock:
                self._uses[id(svc)] -= 1
                if svc in self._retired and not self._uses[id(svc)]:
                    self._retired.remove(svc)
                    self._open.remove(svc)  # closed: its leases are released
                    close = True
            if close:
                svc.close()

    def replace(self, config: Config) -> Service:
        """Make a service for ``config`` current; the old one closes once unused."""
        svc = self._build(config)
        with self._lock:
            old = self.current
            self.config = config
            self.current = svc
            self._open.append(svc)
            close_now = False
            if old is not self._pinned:
                if self._uses.get(id(old), 0):
                    self._retired.append(old)
                else:
                    close_now = True
                    self._open.remove(old)
        if close_now:
            old.close()
        return svc

    def stop_passes(self) -> None:
        """Ask every open generation's passes to stop after the page in flight."""
        for svc in self.open():
            svc.stopping.set()

    def close_all(self, clean: bool) -> None:
        """Close every generation; when a pass is stuck (not ``clean``) only release leases."""
        for svc in self.open():
            if clean:
                svc.close()
                continue
            try:
                leases.release_all(svc.owner)
            except ReconcilerError as exc:
                log.warning("could not release leases: %s", exc)

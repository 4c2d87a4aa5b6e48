"""The bounded connection pool every dialect's database class is built on.

Why: Peewee keeps one connection per thread, so a ``run`` with 32 worker
threads held about 35 connections, and three ``run`` processes exhausted a
PostgreSQL server. Here a process has at most ``[database] pool_size``
connections (Peewee's ``playhouse.pool``): a thread checks one out for a
store call (:func:`reconciler.store.dberrors.map_db_errors` opens and closes
the scope) and gives it back when the call returns, so the seconds a pass
waits on Google hold no connection. A thread that finds every connection
busy waits up to ``[database] pool_timeout`` seconds, then fails with
:class:`PoolExhausted` (one line, mapped to ``DatabaseUnavailable``).

Invariants: a connection the driver knows is dead is dropped (and leaves the
pool's count) before a statement uses it; the pool never hands out more than
``max_connections`` at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from playhouse.pool import MaxConnectionsExceeded, PooledDatabase

PoolExhausted = MaxConnectionsExceeded
log = logging.getLogger("reconciler.store")


class BoundedPool(PooledDatabase):
    """Peewee's pool, plus dropping connections the driver already knows are dead,
    and taking back those of threads that ended without giving theirs back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holders: dict[int, threading.Thread] = {}

    def connect(self, reuse_if_open: bool = False) -> bool:
        """Check a connection out, waiting up to the pool's timeout for one to come back.

        Peewee's own loop can miss a wake-up (a connection given back between
        its failed attempt and its wait) and then sleeps a whole second with a
        connection free; here the wait starts only after a look, under the
        pool's lock, that nothing came back meanwhile.
        """
        deadline = time.monotonic() + (self._wait_timeout or float("inf"))
        while True:
            try:
                return bool(super(PooledDatabase, self).connect(reuse_if_open))
            except MaxConnectionsExceeded:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MaxConnectionsExceeded(
                        f"no free connection within {self._wait_timeout}s") from None
                with self._pool_available:
                    if self._connections or len(self._in_use) < self._max_connections:
                        continue  # one came back meanwhile: try again at once
                    self._pool_available.wait(timeout=min(remaining, 1.0))

    def _connect(self) -> Any:
        with self._pool_lock:
            if self._max_connections and len(self._in_use) >= self._max_connections:
                self._reclaim_orphans()
            conn = super()._connect()
            self._holders[self.conn_key(conn)] = threading.current_thread()
            return conn

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        with self._pool_lock:
            self._holders.pop(self.conn_key(conn), None)
            super()._close(conn, close_conn)

    def _reclaim_orphans(self) -> None:
        """Close the connections of threads that ended while holding one (Peewee keeps a
        connection per thread; a thread's end does not give it back)."""
        for key, thread in list(self._holders.items()):
            if thread.is_alive():
                continue
            del self._holders[key]
            held = self._in_use.pop(key, None)
            if held is not None:
                log.debug("taking back the connection of ended thread %s", thread.name)
                self._close_raw(held.connection)

    def _is_dead(self, conn: Any) -> bool:
        """Whether the driver knows ``conn`` is closed (no round trip)."""
        return False

    def _is_closed(self, conn: Any) -> bool:  # check-out: a local test, never a ping
        return self._is_dead(conn)

    def cursor(self, named_cursor: Any = None) -> Any:
        state = self._state
        if not state.closed and not state.transactions and self._is_dead(state.conn):
            self._close(state.conn, close_conn=True)  # leaves the pool's count too
            state.reset()
        return super().cursor(named_cursor)

    @property
    def pool_size(self) -> int:
        """The most connections this pool opens at once."""
        return int(self._max_connections)

    @property
    def pool_timeout(self) -> float:
        """Seconds a thread waits for a free connection."""
        return float(self._wait_timeout)

    def connections_open(self) -> int:
        """Connections this pool holds now (in use and idle), for tests and docs."""
        with self._pool_lock:
            return len(self._in_use) + len(self._connections)

    def close_pool(self) -> None:
        """Close every connection (process shutdown; in-use ones of other threads too)."""
        with contextlib.suppress(Exception):
            self.close_all()


__all__ = ["BoundedPool", "PoolExhausted"]

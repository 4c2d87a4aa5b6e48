"""Only one ``reconciler run`` per SQLite file.

SQLite has one writer at a time and no server to host leases for a fleet, so
a second ``run`` on the same file is refused at start with one line. The lock
is ``flock`` on ``<database>.run.lock`` beside the database: the kernel drops it
when the process dies, even on SIGKILL, so a crash never leaves a stale lock.
The file holds the pid of the process that has it, for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from reconciler.errors import ReconcilerError


class AlreadyRunning(ReconcilerError):
    """Another ``reconciler run`` uses this SQLite database (exit status 1)."""


class RunLock:
    """An exclusive, non-blocking lock file beside a SQLite database."""

    def __init__(self, database_path: str) -> None:
        self.path = Path(f"{database_path}.run.lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunning` naming the holder."""
        handle = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AlreadyRunning(
                f"another `reconciler run` ({holder}) is using this SQLite database (lock "
                f"{self.path}); only one run per SQLite file: use MySQL/MariaDB or PostgreSQL "
                "to run several") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Drop the lock (also dropped by the kernel when the process ends)."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def lock_for(sqlite_path: str | None) -> RunLock | None:
    """The run lock for a SQLite path; ``None`` for servers and in-memory databases."""
    if not sqlite_path or sqlite_path == ":memory:":
        return None
    return RunLock(os.path.abspath(sqlite_path))

"""A deadline on shutdown: ``run`` exits within 15 s of SIGTERM even if the database hangs.

Shutdown releases leases and stops channels, which needs the database. A
server that stopped answering without closing its sockets (SIGSTOP'd, a
network cut) would make those calls wait for the driver's read time-out, or
for ever on PostgreSQL (libpq has no read time-out). So when shutdown begins,
a daemon timer is armed: if the process is still there after
:data:`EXIT_DEADLINE` seconds it logs one line and ends with status 0. The
leases it could not release expire on their own (``lease_time``), and one held
by a dead process on the same host is taken over at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading

log = logging.getLogger("reconciler.daemon")

EXIT_DEADLINE = 13.0  # seconds; the contract is 15 s from SIGTERM to exit


def exit_deadline(seconds: float = EXIT_DEADLINE) -> threading.Timer:
    """Arm the timer (a daemon thread); the process exits 0 if it is still alive then."""

    def give_up() -> None:
        log.error("run: shutdown did not finish within %.0fs (the database is not answering); "
                  "exiting now, leases expire on their own", seconds)
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing to flush to
                stream.flush()
        os._exit(0)

    timer = threading.Timer(seconds, give_up)
    timer.name = "exit-deadline"
    timer.daemon = True
    timer.start()
    return timer

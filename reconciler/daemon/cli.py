"""``reconciler run``: the long-lived process (registered by ``reconciler.cli``).

Exit status: 0 after SIGTERM/SIGINT (within 15 s, leases released); 1 when
it cannot start (database unreachable, another ``run`` already uses the
same SQLite file, metrics port taken); 2 for usage and config errors.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from reconciler.cli import Context


@click.command("run")
@click.pass_obj  # the group's Context; reconciler.cli is imported lazily (it imports this module)
def run_command(ctx: Context) -> None:
    """Keep the mirror in sync until SIGTERM/SIGINT; SIGHUP reloads the config."""
    from reconciler.cli import user_errors
    from reconciler.daemon.scheduler import Daemon
    from reconciler.daemon.singleton import lock_for

    clean = True
    with user_errors(ctx.debug):
        config = ctx.config()
        lock = lock_for(config.database.sqlite_path)
        if lock is not None:
            lock.acquire()
        try:
            ctx.store(config)
            daemon = Daemon(config, config_path=config.path or ctx.config_path)
            clean = daemon.run(install_signals=True)
        finally:
            if lock is not None:
                lock.release()
    if not clean:
        # A worker thread is stuck in a request; its leases are already released.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    sys.exit(0)

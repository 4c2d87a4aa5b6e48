"""Re-read the config file on SIGHUP without stopping.

A bad file keeps the old config running (one error line). Settings that
cannot change inside a running process (the database, the worker count, the
metrics endpoint, watch mode) keep their old values and are named in one
warning line, so nobody believes a change took effect when it did not.

A reload replaces the service (API handles, HTTP connections, thread pools);
the replaced one closes once no pass uses it. Its objects are full of
reference cycles (generated API resources), and the process collects old
garbage rarely (:mod:`reconciler.process`), so each reload first runs a full
collection: what earlier reloads replaced is freed, and 100 reloads leave RSS
flat instead of growing by the size of a service each time.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from pathlib import Path

from reconciler.config import Config, load_config
from reconciler.errors import ConfigError

log = logging.getLogger("reconciler.daemon")


def reload_config(current: Config, path: str | Path | None) -> Config | None:
    """The new config to use, or ``None`` (error logged) when the file is unusable."""
    gc.collect()  # free what earlier reloads replaced (see the module docstring)
    try:
        new = load_config(path if path is not None else current.path)
    except ConfigError as exc:
        log.error("config reload failed, keeping the running config: %s", exc)
        return None
    kept = []
    if new.database != current.database:
        kept.append("database.url")
    if new.sync.concurrency != current.sync.concurrency:
        kept.append("sync.concurrency")
    if new.metrics != current.metrics:
        kept.append("[metrics]")
    if new.watch != current.watch:
        kept.append("[watch]")
    if kept:
        log.warning("config reload: %s changed; that needs a restart (old value kept)",
                    ", ".join(kept))
    new = dataclasses.replace(new, database=current.database, metrics=current.metrics,
                              watch=current.watch,
                              sync=dataclasses.replace(new.sync,
                                                       concurrency=current.sync.concurrency))
    return new

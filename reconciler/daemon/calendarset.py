"""The calendar set under ``run``: the diff (jobs to add, remove, modify) and its resolution.

``resolve_calendars`` says which calendars to mirror now; the daemon knows
which ones it schedules. The difference is a pure function of the two, so a
reload, a discovery change or a new interval is decided (and tested) without
a scheduler. A calendar whose account changed is removed and added again:
its job id names the account.

:class:`Resolution` remembers whether the set has been resolved without a
failure yet: until then ``/healthz`` says "starting", the daemon retries with
backoff, and the log says it once (one WARNING with what failed and when it
retries, one INFO when resolved), never a silent "0 calendar(s) scheduled".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.config import Config
from reconciler.daemon.backoff import resolve_retry_delay
from reconciler.errors import first_line
from reconciler.intervals import interval_of

log = logging.getLogger("reconciler.daemon")


@dataclass(frozen=True, slots=True)
class Entry:
    """One calendar as the schedule sees it."""

    pk: int
    calendar_id: str
    account: str
    interval: float


@dataclass(frozen=True, slots=True)
class SetDiff:
    """Jobs to add, to remove (``gone``: no longer wanted at all) and to modify (interval)."""

    added: tuple[Entry, ...] = ()
    removed: tuple[Entry, ...] = ()
    gone: frozenset[int] = frozenset()
    modified: tuple[Entry, ...] = ()


def entries(rows: Iterable[Any], config: Config) -> list[Entry]:
    """The calendar set's rows as schedule entries, each with its interval (one owner)."""
    return [Entry(int(row.id), str(row.calendar_id), str(row.account), interval_of(row, config))
            for row in rows]


def diff(known: Mapping[int, Entry], wanted: Iterable[Entry]) -> SetDiff:
    """What changes from the scheduled ``known`` to the ``wanted`` calendar set."""
    want = {entry.pk: entry for entry in wanted}
    removed = [entry for pk, entry in known.items()
               if pk not in want or want[pk].account != entry.account]
    gone = frozenset(entry.pk for entry in removed if entry.pk not in want)
    added, modified = [], []
    for pk, entry in want.items():
        old = known.get(pk)
        if old is None or old.account != entry.account:
            added.append(entry)
        elif old.interval != entry.interval:
            modified.append(entry)
    return SetDiff(tuple(added), tuple(removed), gone, tuple(modified))


class Resolution:
    """Whether the calendar set has been resolved once without a failure; said once each way."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.resolved = False
        self.unresolved: str | None = None  # why not yet (the first failure's line)
        self._attempts = 0
        self._since = clock()
        self._failures: set[str] = set()

    def note(self, messages: list[str], interval: float, scheduled: int) -> float | None:
        """Record one resolution's failure lines; the delay before a retry, or None.

        Until the first clean resolution: one WARNING at the first failure,
        DEBUG for the retries, one INFO when resolved. Afterwards each new
        failure line is one WARNING (the periodic refresh retries).
        """
        if self.resolved:
            for message in sorted(set(messages) - self._failures):
                log.warning("%s", message)
            self._failures = set(messages)
            return None
        self._attempts += 1
        if not messages:
            self.resolved, self.unresolved = True, None
            if self._attempts > 1:
                log.info("calendar set resolved after %d attempts (%.0fs); %d calendar(s) "
                         "scheduled", self._attempts, self._clock() - self._since, scheduled)
            return None
        delay = resolve_retry_delay(self._attempts, interval)
        if self.unresolved is None:
            log.warning("calendar set not resolved: %s; retrying in %.0fs, then with backoff "
                        "up to %.0fs", "; ".join(messages), delay, interval)
        else:
            log.debug("calendar set still not resolved (attempt %d): %s", self._attempts,
                      "; ".join(messages))
        self.unresolved = first_line(messages[0])
        self._failures = set(messages)
        return delay

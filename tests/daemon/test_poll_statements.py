"""Statements one no-change poll of a calendar costs under ``run`` (the job, not ``once``).

Pinned so a refactor of the scheduler cannot add a statement per poll
unnoticed: at 10,000 calendars every statement here is thousands a minute.
The job is driven directly (no scheduler thread), against the emulator.
"""

from __future__ import annotations

from pathlib import Path

from playhouse.test_utils import count_queries

from reconciler.clock import utcnow
from reconciler.daemon.scheduler import Daemon
from reconciler.emulator import Emulator
from reconciler.store import calendars
from tests.daemon.support import load, write_daemon_config
from tests.helpers import timed, wait_for

CID = "statements@group.calendar.google.com"


def test_a_no_change_poll_under_run_costs_six_statements(calendar_emulator: Emulator,
                                                         tmp_path: Path, database_url: str) -> None:
    emu = calendar_emulator
    emu.add_calendar(CID)
    emu.insert_event(CID, timed("one"))
    config = load(emu, write_daemon_config(tmp_path, database_url, [
        {"name": "ops", "calendars": [CID]}], {"sync": {"interval": 1, "jitter": 0}}))
    daemon = Daemon(config)
    try:
        daemon.resolve(initial=True)
        [job] = daemon.roster.jobs()
        with daemon.generations.borrow() as svc:
            assert not job.look(svc, utcnow())  # the first (full) pass
            assert not job.look(svc, utcnow())  # warm: the account is known to be ok

            def due() -> bool:
                state = calendars.read_state(job.pk)
                return state is not None and state.next_due is not None and (
                    state.next_due <= utcnow().replace(microsecond=0))

            wait_for(due, 10, "the next due time")
            passes = daemon.metrics.syncs.labels("incremental")._value.get()
            with count_queries() as counter:
                assert not job.look(svc, utcnow())
            assert daemon.metrics.syncs.labels("incremental")._value.get() == passes + 1
        # read the row, read the account (the decision); claim, re-read under the lease,
        # record the pass (the attempt); answer a "sync soon" request (one UPDATE).
        assert counter.count == 6, [q.msg for q in counter.get_queries()]
    finally:
        daemon.shutdown()

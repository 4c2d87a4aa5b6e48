"""A Hypothesis state machine: random edits, syncs, token expiry and failed passes.

After every successful pass the mirror must equal the emulator's truth, and the
change feed, folded from the start, must describe exactly the live events; folding
the feed's diffs over each event's first version reproduces every later version
(kept in ``event_version`` with ``[store] history``) and its changed fields.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import ExitStack

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from reconciler.config import parse_config
from reconciler.diff import VOLATILE, apply_diff, changed_fields
from reconciler.emulator import running_emulator
from reconciler.once import run_once
from reconciler.store import open_store
from reconciler.store.changes import read_changes
from reconciler.store.models import EventVersion
from tests.helpers import assert_mirror_exact, mirror

TEAM = "team@group.calendar.google.com"
titles = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                 min_size=0, max_size=12)


class MirrorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        self.emu = self.stack.enter_context(running_emulator())
        self.emu.add_calendar(TEAM, owners=["user@example.com"])
        self.tmp = tempfile.mkdtemp()
        text = (f'[database]\nurl = "sqlite:///{self.tmp}/m.db"\n'
                f'[google]\napi_endpoint = {json.dumps(self.emu.base_url)}\nretries = 0\n'
                '[sync]\npage_size = 3\n[[accounts]]\nname = "ops"\n'
                f'calendars = ["{TEAM}"]\n[store]\nhistory = 1000\n')
        self.config = parse_config(text, path=f"{self.tmp}/r.toml", env={})
        open_store(self.config.database.url)
        self.ids: list[str] = []
        self.synced = True

    def teardown(self) -> None:
        self.stack.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(title=titles, hour=st.integers(0, 22))
    def insert(self, title: str, hour: int) -> None:
        event = self.emu.insert_event(TEAM, {
            "summary": title, "start": {"dateTime": f"2025-06-01T{hour:02d}:00:00Z"},
            "end": {"dateTime": f"2025-06-01T{hour + 1:02d}:00:00Z"}})
        self.ids.append(event["id"])
        self.synced = False

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), title=titles)
    def rename(self, data: st.DataObject, title: str) -> None:
        event_id = data.draw(st.sampled_from(self.ids))
        self.emu.patch_event(TEAM, event_id, {"summary": title, "status": "confirmed"})
        self.synced = False

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), hour=st.integers(0, 22))
    def move(self, data: st.DataObject, hour: int) -> None:
        event_id = data.draw(st.sampled_from(self.ids))
        self.emu.patch_event(TEAM, event_id, {
            "start": {"dateTime": f"2025-06-02T{hour:02d}:00:00Z"},
            "end": {"dateTime": f"2025-06-02T{hour + 1:02d}:00:00Z"}, "status": "confirmed"})
        self.synced = False

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        event_id = data.draw(st.sampled_from(self.ids))
        if self.emu.get_event(TEAM, event_id).get("status") != "cancelled":
            self.emu.delete_event(TEAM, event_id)
            self.synced = False

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        """Restore from the trash: the cancelled event comes back confirmed."""
        event_id = data.draw(st.sampled_from(self.ids))
        if self.emu.get_event(TEAM, event_id).get("status") == "cancelled":
            self.emu.patch_event(TEAM, event_id, {"status": "confirmed"})
            self.synced = False

    @rule()
    def expire_tokens(self) -> None:
        self.emu.expire_tokens(TEAM)

    @rule(pages_first=st.integers(0, 3))
    def failed_pass(self, pages_first: int) -> None:
        """A pass that dies part-way, after ``pages_first`` pages: nothing lost or doubled."""
        self.emu.empty_pages(TEAM, pages_first)
        self.emu.inject_fault(TEAM, status=403, reason="forbidden", count=1,
                              methods={"events.list"})
        assert run_once(self.config) == 1
        self.emu.clear_faults()
        self.synced = False

    @rule()
    def sync(self) -> None:
        assert run_once(self.config) == 0
        self.synced = True

    @invariant()
    def mirror_is_exact_after_a_successful_pass(self) -> None:
        if self.synced:
            assert_mirror_exact(self.emu, TEAM)
            live: set[str] = set()
            for change in read_changes(0, 100_000):
                if change["kind"] == "created":
                    assert change["event_id"] not in live
                    live.add(change["event_id"])
                elif change["kind"] == "deleted":
                    assert change["event_id"] in live
                    live.discard(change["event_id"])
                else:
                    assert change["event_id"] in live
            rows = mirror(TEAM)
            assert live == {i for i, (status, _) in rows.items() if status != "cancelled"}
            self.check_diffs_fold(rows)

    def check_diffs_fold(self, rows: dict[str, tuple[str, dict[str, object]]]) -> None:
        """Fold each event's diffs from its first version: every version is reproduced."""
        def bare(resource: dict[str, object]) -> dict[str, object]:
            return {k: v for k, v in resource.items() if k not in VOLATILE}

        versions = {cid: json.loads(raw) for cid, raw in
                    EventVersion.select(EventVersion.change_id, EventVersion.raw).tuples()
                    if cid is not None}
        state: dict[str, dict[str, object]] = {}
        for change in read_changes(0, 100_000, diff=True, full=True):
            event_id, version = change["event_id"], versions.get(change["id"])
            if change["kind"] == "updated":
                assert event_id in state and version is not None
                assert change["fields"] == changed_fields(state[event_id], version)
                state[event_id] = apply_diff(state[event_id], change.get("diff", {}))
                assert bare(state[event_id]) == bare(version)
            elif version is not None:
                state[event_id] = version
        for event_id, (status, raw) in rows.items():
            if status != "cancelled":
                assert bare(state[event_id]) == bare(raw)


quick = settings(max_examples=40, stateful_step_count=20, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


class TestMirrorStateMachine(MirrorMachine.TestCase):  # type: ignore[name-defined,misc]
    """A quick run on every test invocation."""

    settings = quick


@pytest.mark.slow
class TestMirrorStateMachineLong(MirrorMachine.TestCase):  # type: ignore[name-defined,misc]
    """Enough examples to reach rare orders (delete before the first sync, then restore)."""

    settings = settings(quick, max_examples=300)

"""Property tests of the pure page planner (Hypothesis, no HTTP, no database).

Pages are drawn from realistic histories of a few events (``updated`` grows,
``sequence`` never falls, some versions are cancelled stubs without either),
split into pages in any order with repeats, and planned against a dict that
plays the store. The planner must agree with folding the reconcile rule over
the items, converge on each event's newest version whatever the order, and
write nothing when a page is planned again against its own result.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.eventfields import derive
from reconciler.planner import Listing, PagePlan, plan_page
from reconciler.reconcile import Version, decide, effective_updated

BASE_MS = 1_700_000_000_000


def _iso(ms: int) -> str:
    from reconciler.eventfields import format_rfc3339, from_millis

    return format_rfc3339(from_millis(ms))


@st.composite
def histories(draw: st.DrawFn, event_id: str) -> list[dict[str, Any]]:
    versions: list[dict[str, Any]] = []
    updated = BASE_MS + draw(st.integers(0, 10**6)) * 1000
    sequence = draw(st.integers(0, 2))
    for i in range(draw(st.integers(1, 5))):
        updated += draw(st.integers(1, 10**4)) * 1000
        if draw(st.booleans()):
            sequence += 1
        status = draw(st.sampled_from(["confirmed", "tentative", "cancelled"]))
        if status == "cancelled" and draw(st.booleans()):
            versions.append({"kind": "calendar#event", "id": event_id, "etag": f'"{event_id}-{i}"',
                             "status": "cancelled", "updated": _iso(updated)})
            continue
        versions.append({"kind": "calendar#event", "id": event_id, "etag": f'"{event_id}-{i}"',
                         "status": status, "sequence": sequence, "updated": _iso(updated),
                         "summary": f"v{i}", "start": {"date": "2025-01-01"},
                         "end": {"date": "2025-01-02"}})
    return versions


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, list[dict[str, Any]]], list[list[Any]]]:
    ids = [f"e{n}" for n in range(draw(st.integers(1, 4)))]
    history = {event_id: draw(histories(event_id)) for event_id in ids}
    everything = [v for versions in history.values() for v in versions]
    replays = draw(st.lists(st.sampled_from(everything), max_size=10))
    junk = draw(st.lists(st.sampled_from([{"summary": "no id"}, "text", {"id": ""}]), max_size=2))
    items = list(draw(st.permutations(everything + replays + junk)))
    cuts = sorted(draw(st.lists(st.integers(0, len(items)), max_size=4)))
    pages, start = [], 0
    for cut in [*cuts, len(items)]:
        pages.append(items[start:cut])
        start = cut
    return history, pages


def _apply(store: dict[str, Version], plan: PagePlan) -> None:
    for write in plan.writes:
        store[write.fields.event_id] = write.fields.version(write.updated_ms)


LISTING = Listing(updated_ms=BASE_MS + 10**12, received_ms=BASE_MS + 2 * 10**12)


@given(scenarios(), st.booleans())
def test_pages_converge_on_the_newest_version_of_every_event(scenario: Any,
                                                             authoritative: bool) -> None:
    history, pages = scenario
    store: dict[str, Version] = {}
    for page in pages:
        _apply(store, plan_page(store, page, LISTING, authoritative))
    assert set(store) == set(history)
    for event_id, versions in history.items():
        assert store[event_id].etag == versions[-1]["etag"]


@given(scenarios())
def test_the_plan_is_the_fold_of_the_reconcile_rule(scenario: Any) -> None:
    _history, pages = scenario
    store: dict[str, Version] = {}
    for page in pages:
        plan = plan_page(store, page, LISTING, False)
        expected: dict[str, Version] = dict(store)
        kinds: list[tuple[str, str]] = []
        bad = 0
        for item in page:
            if not (isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]):
                bad += 1
                continue
            fields = derive(item)
            new = fields.version(effective_updated(fields.updated_ms, LISTING.updated_ms,
                                                   LISTING.received_ms))
            action = decide(expected.get(fields.event_id), new)
            if action.writes:
                expected[fields.event_id] = new
            if action.change_kind:
                kinds.append((fields.event_id, action.change_kind))
        assert [(c.event_id, c.kind) for c in plan.changes] == kinds
        assert plan.counts.created + plan.counts.updated + plan.counts.deleted == len(plan.changes)
        assert plan.counts.bad_events >= bad
        assert len({w.fields.event_id for w in plan.writes}) == len(plan.writes)
        _apply(store, plan)
        assert store == expected


@given(scenarios(), st.booleans())
def test_planning_a_page_again_writes_nothing(scenario: Any, authoritative: bool) -> None:
    _history, pages = scenario
    store: dict[str, Version] = {}
    for page in pages:
        _apply(store, plan_page(store, page, LISTING, authoritative))
    for page in pages:
        again = plan_page(store, page, LISTING, authoritative)
        # Every item is now stored or older than what is stored: nothing to write.
        assert not again.writes and not again.changes

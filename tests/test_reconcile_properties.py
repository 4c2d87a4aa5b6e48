"""Property tests of the pure reconcile rule (Hypothesis).

The rule's promise: applying any permutation of a set of versions of one
event, with repeats, ends in the same stored row as applying the newest once,
and writes a change row only when the mirrored state really changed.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.reconcile import Action, Version, decide, effective_updated


@st.composite
def histories(draw: st.DrawFn) -> list[Version]:
    """A realistic history: ``updated`` strictly increases, ``sequence`` never decreases,
    some edits do not bump ``sequence``, some versions are cancelled stubs."""
    count = draw(st.integers(min_value=1, max_value=8))
    versions = []
    updated = draw(st.integers(min_value=0, max_value=10**12))
    sequence = draw(st.integers(min_value=0, max_value=3))
    for i in range(count):
        updated += draw(st.integers(min_value=1, max_value=10**6))
        if draw(st.booleans()):
            sequence += draw(st.integers(min_value=1, max_value=2))
        status = draw(st.sampled_from(["confirmed", "confirmed", "tentative", "cancelled"]))
        stub = status == "cancelled" and draw(st.booleans())
        versions.append(Version(etag=f'"{i}"', updated_ms=updated,
                                sequence=None if stub else sequence, status=status))
    return versions


def apply_all(versions: list[Version]) -> tuple[Version | None, list[str]]:
    stored: Version | None = None
    changes: list[str] = []
    for version in versions:
        action = decide(stored, version)
        if action.writes:
            stored = version
        if action.change_kind:
            changes.append(action.change_kind)
    return stored, changes


@given(histories(), st.data())
def test_any_permutation_with_repeats_converges_on_the_newest(history: list[Version],
                                                              data: st.DataObject) -> None:
    replay = data.draw(st.lists(st.sampled_from(history), min_size=0, max_size=20))
    order = data.draw(st.permutations(history + replay))
    final, _ = apply_all(list(order))
    assert final == history[-1]


@given(histories(), st.data())
def test_replaying_the_same_versions_again_changes_nothing(history: list[Version],
                                                           data: st.DataObject) -> None:
    order = list(data.draw(st.permutations(history)))
    final, _ = apply_all(order)
    again = data.draw(st.permutations(history))
    stored = final
    for version in again:
        action = decide(stored, version)
        assert action.change_kind is None
        assert not action.writes


@given(histories())
def test_in_order_changes_follow_visible_state(history: list[Version]) -> None:
    stored: Version | None = None
    for version in history:
        before = stored
        action = decide(stored, version)
        if action.writes:
            stored = version
        was_live = before is not None and not before.cancelled
        is_live = stored is not None and not stored.cancelled
        if was_live and not is_live:
            assert action.change_kind == "deleted"
        elif is_live and not was_live:
            assert action.change_kind == "created"
        elif was_live and is_live and before != stored:
            assert action.change_kind == "updated"
        else:
            assert action.change_kind is None


def test_title_edit_without_sequence_bump_is_an_update() -> None:
    old = Version('"a"', 1000, 3, "confirmed")
    new = Version('"b"', 2000, 3, "confirmed")
    assert decide(old, new) is Action.UPDATE


def test_lower_sequence_is_stale_even_when_newer() -> None:
    assert decide(Version('"a"', 1000, 4, "confirmed"),
                  Version('"b"', 2000, 3, "confirmed")) is Action.STALE


def test_version_that_arrives_cancelled_is_a_silent_tombstone() -> None:
    assert decide(None, Version('"a"', 1000, None, "cancelled")) is Action.INSERT_TOMBSTONE
    assert Action.INSERT_TOMBSTONE.change_kind is None


def test_stub_without_updated_takes_the_listing_time_and_beats_older_versions() -> None:
    stub_time = effective_updated(None, 5000, 9999)
    assert stub_time == 5000
    assert effective_updated(None, None, 9999) == 9999
    live = Version('"a"', 4000, 1, "confirmed")
    stub = Version('"b"', stub_time, None, "cancelled")
    assert decide(live, stub) is Action.DELETE
    assert decide(stub, live) is Action.STALE  # a replay of the pre-deletion version loses
    restored = Version('"c"', 6000, 2, "confirmed")
    assert decide(stub, restored) is Action.RESTORE


def test_tombstone_changing_etag_writes_no_change_row() -> None:
    action = decide(Version('"a"', 1000, None, "cancelled"), Version('"b"', 2000, None, "cancelled"))
    assert action is Action.RETOMBSTONE and action.change_kind is None and action.writes


def test_a_full_listing_repairs_a_row_that_ties_on_time() -> None:
    damaged = Version('"zzz"', 1000, 2, "confirmed")  # same time, wrong etag
    truth = Version('"abc"', 1000, 2, "confirmed")
    assert decide(damaged, truth) is Action.STALE  # incremental: the etag tie-break holds
    assert decide(damaged, truth, authoritative=True) is Action.UPDATE
    assert decide(truth, damaged, authoritative=True) is Action.UPDATE
    assert decide(Version('"a"', 2000, 2, "confirmed"), Version('"b"', 1000, 2, "confirmed"),
                  authoritative=True) is Action.STALE  # older stays stale

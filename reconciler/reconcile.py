"""The reconcile rule: what to do with one incoming event version.

This is the heart of the mirror and deliberately pure: no I/O, no clock, no
database. The engine feeds it the stored version and the incoming one and
applies whatever it decides. Keeping it pure is what lets a Hypothesis property
test prove that any permutation of a set of versions, with repeats, converges on
the newest version (see ``tests/test_reconcile_properties.py``).

Why ``sequence`` is not enough: Google bumps it only for significant changes
(start, end, recurrence, status), never for a new title or description, so a
greater ``updated`` with an equal ``sequence`` is a real change. Why ``updated``
is not always there: cancelled stubs in a sync response usually carry neither
``updated`` nor ``sequence``; the caller gives them the listing's own time (see
``effective_updated``), which is never earlier than the deletion.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    """What to do with an incoming version, and which change row it produces."""

    INSERT = "insert"  # new row, change "created"
    INSERT_TOMBSTONE = "insert_tombstone"  # new row already cancelled, no change row
    NOOP = "noop"  # same etag: nothing to do
    STALE = "stale"  # older than what is stored: skip
    UPDATE = "update"  # live -> live, change "updated"
    DELETE = "delete"  # live -> cancelled, change "deleted"
    RESTORE = "restore"  # cancelled -> live, change "created"
    RETOMBSTONE = "retombstone"  # cancelled -> cancelled with a new etag, no change row

    @property
    def change_kind(self) -> str | None:
        """The change-feed kind this action records, if any."""
        return _CHANGE_KIND.get(self)

    @property
    def writes(self) -> bool:
        """Whether the stored row must be written."""
        return self not in (Action.NOOP, Action.STALE)


_CHANGE_KIND = {
    Action.INSERT: "created",
    Action.UPDATE: "updated",
    Action.DELETE: "deleted",
    Action.RESTORE: "created",
}

CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Version:
    """The comparable identity of one version of an event.

    ``updated_ms`` is milliseconds since the epoch (the effective time for stubs);
    ``sequence`` is None when the resource carries none.
    """

    etag: str
    updated_ms: int | None
    sequence: int | None
    status: str

    @property
    def cancelled(self) -> bool:
        return self.status == CANCELLED


def effective_updated(updated_ms: int | None, listing_updated_ms: int | None,
                      received_ms: int) -> int:
    """The time to compare a version by when it may lack ``updated``.

    A cancelled stub usually has no ``updated``; the listing envelope's
    ``updated`` (the calendar's last modification) is never earlier than the
    deletion, and failing that the time the page was received is.
    """
    if updated_ms is not None:
        return updated_ms
    if listing_updated_ms is not None:
        return listing_updated_ms
    return received_ms


def is_stale(old: Version, new: Version, *, authoritative: bool = False) -> bool:
    """Whether ``new`` is older than ``old`` and must not overwrite it.

    Stale when its ``updated`` is earlier, or when both carry a ``sequence`` and
    the new one is lower. Versions that tie on both (Google never writes two
    versions in one millisecond, so only a damaged row can tie) are ordered by
    etag so that every order of application ends on the same row, except in an
    ``authoritative`` listing (a full one: Google's current state), where the
    incoming version wins and so repairs the row.
    """
    if new.updated_ms is not None and old.updated_ms is not None:
        if new.updated_ms < old.updated_ms:
            return True
        if new.updated_ms > old.updated_ms:
            return (new.sequence is not None and old.sequence is not None
                    and new.sequence < old.sequence)
    if new.sequence is not None and old.sequence is not None and new.sequence != old.sequence:
        return new.sequence < old.sequence
    # A full tie (same time, same or no sequence).
    return not authoritative and new.etag < old.etag


def decide(old: Version | None, new: Version, *, authoritative: bool = False) -> Action:
    """Decide what the mirror does with ``new`` given the stored ``old``.

    ``authoritative`` marks versions from a full listing (see :func:`is_stale`).
    """
    if old is None:
        return Action.INSERT_TOMBSTONE if new.cancelled else Action.INSERT
    if new.etag == old.etag:
        return Action.NOOP
    if is_stale(old, new, authoritative=authoritative):
        return Action.STALE
    if new.cancelled:
        return Action.RETOMBSTONE if old.cancelled else Action.DELETE
    if old.cancelled:
        return Action.RESTORE
    return Action.UPDATE

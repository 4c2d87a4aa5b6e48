"""Decode an ``events.list`` page once, keeping every item's raw bytes.

Why: parsing a page into full Python objects and writing each item back out
as JSON was the largest CPU cost of a sync (a 2,500-event page is megabytes).
Here the page is split by msgspec into its envelope and one ``Raw`` slice per
item (no Python objects for the bulk of an event: attendees, descriptions,
conference data), and each item is decoded into a :class:`RawItem`: a dict of
only the :data:`NARROW_FIELDS` the reconcile rule and the derived columns read,
carrying the item's exact bytes in ``.raw``, which the store writes verbatim.

Invariants:

* ``RawItem.raw`` is the item's JSON text exactly as Google sent it (valid
  UTF-8; escapes such as ``\\u0000`` stay escapes);
* a ``RawItem`` holds a key iff the item has it and it is in
  :data:`NARROW_FIELDS`; ``item["other"]`` (and :meth:`RawItem.full`) decode
  the whole item on demand; ``.get`` of other keys returns None, so code that
  needs fields beyond the narrow set calls :meth:`RawItem.full`;
* a page msgspec cannot split (a lone surrogate escape such as ``\\ud800``,
  nesting too deep for its parser, integers beyond 64 bits inside an item it
  must skip) is not refused here: :func:`decode_events_page` returns None and
  the caller decodes the page the general way (full dicts, re-encoded when
  stored), so one hostile event never fails its page;
* an item that is not a JSON object is handed on decoded (the planner counts
  it as a bad event); an item that cannot be decoded at all is replaced by
  None, which the planner counts as a bad event while the rest of the page is
  applied.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

import msgspec

# The fields the reconcile rule, the derived columns and the event-type filter read.
NARROW_FIELDS = ("id", "etag", "status", "updated", "sequence", "summary", "start", "end",
                 "recurringEventId", "originalStartTime", "eventType")


class _Narrow(TypedDict, total=False):
    """The narrow view msgspec decodes (unknown fields are skipped, not built)."""

    id: Any
    etag: Any
    status: Any
    updated: Any
    sequence: Any
    summary: Any
    start: Any
    end: Any
    recurringEventId: Any
    originalStartTime: Any
    eventType: Any


class _Envelope(msgspec.Struct):
    """An events page: envelope fields as sent, items left undecoded."""

    items: list[msgspec.Raw]
    nextPageToken: Any = msgspec.UNSET
    nextSyncToken: Any = msgspec.UNSET
    updated: Any = msgspec.UNSET
    timeZone: Any = msgspec.UNSET
    accessRole: Any = msgspec.UNSET


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_NARROW = msgspec.json.Decoder(_Narrow)


class RawItem(dict[str, Any]):
    """An event's narrow fields as a dict, plus its exact JSON bytes in ``raw``."""

    __slots__ = ("raw",)

    raw: bytes

    def __missing__(self, key: str) -> Any:
        """A field outside the narrow set: decode the whole item (rare; KeyError if absent)."""
        if key in NARROW_FIELDS:
            raise KeyError(key)
        return self.full()[key]

    def full(self) -> dict[str, Any]:
        """The whole item, decoded from ``raw``."""
        return _decode_any(self.raw)


def _decode_any(raw: bytes) -> Any:
    # The standard parser: exact for integers beyond 64 bits (orjson and msgspec
    # turn those into floats). Rare path: a field outside the narrow set.
    return json.loads(raw)


def _item(raw: msgspec.Raw) -> Any:
    data = bytes(raw)
    try:
        narrow = _NARROW.decode(data)
    except msgspec.ValidationError:  # not an object: the planner counts it as bad
        return _decode_any(data)
    item = RawItem(narrow)
    item.raw = data
    return item


def decode_events_page(content: bytes | str) -> dict[str, Any] | None:
    """The page as a dict whose ``items`` are :class:`RawItem` s; None when msgspec
    cannot split it (decode it the general way: see the module invariants)."""
    try:
        envelope = _ENVELOPE.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    items: list[Any] = []
    for raw in envelope.items:
        try:
            items.append(_item(raw))
        except (msgspec.DecodeError, RecursionError, ValueError):
            items.append(None)
    page: dict[str, Any] = {"items": items}
    for name in ("nextPageToken", "nextSyncToken", "updated", "timeZone", "accessRole"):
        value = getattr(envelope, name)
        if value is not msgspec.UNSET:
            page[name] = value
    return page


__all__ = ["NARROW_FIELDS", "RawItem", "decode_events_page"]

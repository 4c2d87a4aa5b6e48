"""Say what changed inside an event: field-level diffs between two versions.

The change feed answers "which event changed?"; this module answers "what
changed in it?". Pure functions over two raw resources (dicts as Google sends
them), used while a page is applied (:mod:`reconciler.planner`) and when the
feed or an event's history is printed.

Invariants:

* ``changed_fields(old, new)`` is the sorted list of top-level keys whose value
  differs (a key present on one side only counts); ``etag``, ``updated`` and
  ``sequence`` (:data:`VOLATILE`) never count on their own;
* ``field_diff(old, new)`` holds ``{"before": v, "after": v}`` for every changed
  field (a side is left out when the key is absent there, so ``null`` and
  "absent" differ), plus ``sequence`` when it changed along with a real change;
  :func:`apply_diff` of it over ``old`` gives ``new`` on every key except
  ``etag`` and ``updated`` (and ``sequence`` when nothing else changed);
* ``raw_diff(dumps(old), dumps(new))`` is ``(changed_fields(old, new),
  dumps(field_diff(old, new)))``: the same diff from serialised resources,
  without parsing what did not change;
* attendees are matched by ``email``, else ``id``, else ``displayName``;
  :func:`attendee_changes` reports who was added, removed, changed
  ``responseStatus``, or changed anything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import orjson

VOLATILE = frozenset({"etag", "updated", "sequence"})
"""Keys that change on (almost) every write: never a change on their own."""

TRUNCATE_AT = 200
"""Characters a string value keeps in ``changes --diff`` without ``--full``."""

_ABSENT = object()


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The sorted top-level keys whose values differ, ignoring :data:`VOLATILE`."""
    keys = (old.keys() | new.keys()) - VOLATILE
    return sorted(k for k in keys if old.get(k, _ABSENT) != new.get(k, _ABSENT))


def field_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Before/after values of every changed field (and ``sequence`` when it moved too).

    A side is missing when the key is absent in that version. Empty when
    nothing but :data:`VOLATILE` keys changed. Keys come out sorted. One pass
    over each side (this runs for every updated event of a page).
    """
    get = old.get
    # One C-level comprehension finds the keys (most events differ in few of ~20).
    differing = [k for k, v in new.items() if get(k, _ABSENT) != v]
    diff: dict[str, dict[str, Any]] = {}
    for key in differing:
        if key in VOLATILE:
            continue
        before = get(key, _ABSENT)
        diff[key] = {"after": new[key]} if before is _ABSENT else {"before": before,
                                                                    "after": new[key]}
    if old.keys() != new.keys():
        for key in old.keys() - new.keys():
            if key not in VOLATILE:
                diff[key] = {"before": old[key]}
    if not diff:
        return diff
    before, after = old.get("sequence", _ABSENT), new.get("sequence", _ABSENT)
    if before != after:
        entry: dict[str, Any] = {}
        if before is not _ABSENT:
            entry["before"] = before
        if after is not _ABSENT:
            entry["after"] = after
        diff["sequence"] = entry
    return dict(sorted(diff.items()))


_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _value(raw: msgspec.Raw) -> Any:
    try:
        return orjson.loads(bytes(raw))
    except orjson.JSONDecodeError:  # integers beyond 64 bits
        return msgspec.json.decode(bytes(raw))


def raw_diff(old_raw: str | bytes, new_raw: str | bytes) -> tuple[list[str], str]:
    """:func:`changed_fields` and the JSON text of :func:`field_diff`, from serialised resources.

    What runs for every updated event of a page, so it parses as little as it
    can: each top-level value is compared as raw JSON text (a scan, no objects
    built); the before/after values are copied into the diff as text; only
    objects and arrays whose text differs are parsed, to tell a reordering of
    nested keys from a change. Scalars are compared as text, which is exact for
    the canonical JSON the store writes (:func:`reconciler.store.events.dump_raw`).
    """
    old, new = _TOP_LEVEL.decode(old_raw), _TOP_LEVEL.decode(new_raw)
    get = old.get
    differing = [k for k, v in new.items() if get(k) != v and k not in VOLATILE]
    if old.keys() != new.keys():
        differing += [k for k in old.keys() - new.keys() if k not in VOLATILE]
    if not differing:
        return [], "{}"
    fields: list[str] = []
    for key in sorted(differing):
        before, after = get(key), new.get(key)
        if before is not None and after is not None and _container(before) \
                and _value(before) == _value(after):
            continue
        fields.append(key)
    if not fields:
        return [], "{}"
    keys = fields
    if get("sequence") != new.get("sequence"):
        keys = sorted([*fields, "sequence"])
    parts = []
    for key in keys:
        before, after = get(key), new.get(key)
        sides = []
        if before is not None:
            sides.append('"before":' + bytes(before).decode("utf-8"))
        if after is not None:
            sides.append('"after":' + bytes(after).decode("utf-8"))
        parts.append(orjson.dumps(key).decode("utf-8") + ":{" + ",".join(sides) + "}")
    return fields, "{" + ",".join(parts) + "}"


def _container(raw: msgspec.Raw) -> bool:
    return bytes(raw)[:1] in (b"{", b"[")


def apply_diff(old: Mapping[str, Any], diff: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``old`` with every field of ``diff`` set to its ``after`` (or removed without one)."""
    result = dict(old)
    for key, entry in diff.items():
        if "after" in entry:
            result[key] = entry["after"]
        else:
            result.pop(key, None)
    return result


def attendee_key(attendee: Any) -> str | None:
    """How an attendee is recognised across versions: email, else id, else display name."""
    if not isinstance(attendee, Mapping):
        return None
    for name in ("email", "id", "displayName"):
        value = attendee.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _by_key(attendees: Any) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    if isinstance(attendees, Sequence) and not isinstance(attendees, str):
        for attendee in attendees:
            key = attendee_key(attendee)
            if key is not None and key not in found:
                found[key] = attendee
    return found


def attendee_changes(before: Any, after: Any) -> list[dict[str, Any]]:
    """Who was added, removed, changed ``responseStatus`` or changed otherwise, by key.

    Entries are sorted by attendee key: ``{"attendee": K, "change": "added",
    "responseStatus": S}``, ``{"attendee": K, "change": "removed"}``,
    ``{"attendee": K, "change": "responseStatus", "before": S1, "after": S2}``
    or ``{"attendee": K, "change": "updated", "fields": [...]}``.
    """
    old, new = _by_key(before), _by_key(after)
    out: list[dict[str, Any]] = []
    for key in sorted(old.keys() | new.keys()):
        if key not in old:
            out.append({"attendee": key, "change": "added",
                        "responseStatus": new[key].get("responseStatus")})
        elif key not in new:
            out.append({"attendee": key, "change": "removed"})
        else:
            a, b = old[key], new[key]
            if a.get("responseStatus") != b.get("responseStatus"):
                out.append({"attendee": key, "change": "responseStatus",
                            "before": a.get("responseStatus"), "after": b.get("responseStatus")})
            others = [k for k in changed_fields(a, b) if k != "responseStatus"]
            if others:
                out.append({"attendee": key, "change": "updated", "fields": others})
    return out


def truncate(value: Any, limit: int = TRUNCATE_AT) -> Any:
    """``value`` with every string longer than ``limit`` cut, saying how much was left out."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        return f"{value[:limit]}… ({len(value) - limit} more characters)"
    if isinstance(value, Mapping):
        return {k: truncate(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [truncate(v, limit) for v in value]
    return value


def describe(diff: Mapping[str, Mapping[str, Any]], *, full: bool = False) -> dict[str, Any]:
    """The printable form of a stored diff: values truncated unless ``full``, attendee detail.

    ``attendees`` gains a ``"changes"`` list (see :func:`attendee_changes`).
    """
    out: dict[str, Any] = {}
    for key, entry in diff.items():
        shown = dict(entry) if full else {side: truncate(v) for side, v in entry.items()}
        if key == "attendees":
            shown["changes"] = attendee_changes(entry.get("before"), entry.get("after"))
        out[key] = shown
    return out


__all__ = [
    "TRUNCATE_AT",
    "VOLATILE",
    "apply_diff",
    "attendee_changes",
    "attendee_key",
    "changed_fields",
    "describe",
    "field_diff",
    "raw_diff",
    "truncate",
]

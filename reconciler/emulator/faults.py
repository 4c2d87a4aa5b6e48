"""Fault injection: make matching API requests fail, stall, drop or answer hostile pages.

Tests use this to exercise retries, backoff and error classification against
exactly the responses Google sends (status, reason, domain, ``Retry-After``), and
the sync engine's defences against answers Google should never send. Kinds:

- ``status``: answer ``status`` with Google's error body for ``reason`` (and
  ``Retry-After`` when ``retry_after`` is set).
- ``stall``: wait ``stall_seconds`` (no lock held), then answer normally. With
  ``count=None`` and ``methods=["events.list"]`` every page of every listing of
  the calendar stalls: what progress and timeout tests need.
- ``drop``: close the connection without answering.
- ``repeat_page_token``: events.list only. The listing never ends: a page asked
  for with a ``pageToken`` answers that same token again as ``nextPageToken``
  (and no ``nextSyncToken``); a first page answers its real next token, or one
  pointing past the end, so the client goes on asking for the same page forever.
- ``html``: 200 with a ``text/html`` error page instead of JSON.
- ``json_array``: 200 with the JSON ``[]``.
- ``empty``: 200 with an empty body (``Content-Length: 0``, JSON content type).
- ``truncated``: 200 with the real answer cut in half (valid HTTP, cut JSON).

A fault hits the next ``count`` matching requests (``count=None``: every one
until :meth:`FaultBook.clear`); faults are consumed first-armed-first, one per
request. Invariant: the body kinds never touch stored data; ``truncated`` runs
the real request and cuts its answer, the others answer without running it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

CONTROL_KINDS = ("status", "stall", "drop")
BODY_KINDS = ("html", "json_array", "empty", "truncated")
KINDS = (*CONTROL_KINDS, "repeat_page_token", *BODY_KINDS)
_LISTING_ONLY = frozenset({"events.list"})

_HTML = (
    b"<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error 502 (Server Error)!!1</title>"
    b"<p><b>502.</b> <ins>That\xe2\x80\x99s an error.</ins><p>The server encountered a temporary error"
    b" and could not complete your request.<p>Please try again in 30 seconds."
    b" <ins>That\xe2\x80\x99s all we know.</ins></html>\n"
)


@dataclass
class Fault:
    """One armed fault; ``count`` requests are still to be hit (None: unlimited)."""

    calendar_id: str | None
    kind: str = "status"
    status: int = 500
    reason: str | None = None
    count: int | None = 1
    retry_after: float | None = None
    stall_seconds: float = 0.0
    methods: frozenset[str] | None = None
    hits: int = field(default=0)

    def applies(self, calendar_id: str | None, method: str) -> bool:
        """Whether this fault targets a request for ``calendar_id`` / ``method``."""
        if self.count is not None and self.count <= 0:
            return False
        if self.calendar_id is not None and self.calendar_id != calendar_id:
            return False
        return self.methods is None or method in self.methods


def hostile_body(kind: str, real: bytes) -> tuple[bytes, str]:
    """The (body, content type) a body-kind fault answers instead of ``real``."""
    json_type = "application/json; charset=UTF-8"
    if kind == "html":
        return _HTML, "text/html; charset=UTF-8"
    if kind == "json_array":
        return b"[]", json_type
    if kind == "empty":
        return b"", json_type
    if kind == "truncated":
        return bytes(real[: len(real) // 2]), json_type
    raise ValueError(f"not a body fault: {kind!r}")


class FaultBook:
    """The armed faults, consumed first-armed-first by matching requests."""

    def __init__(self) -> None:
        """Start with no faults."""
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        calendar_id: str | None,
        kind: str = "status",
        status: int = 500,
        reason: str | None = None,
        count: int | None = 1,
        retry_after: float | None = None,
        stall_seconds: float = 0.0,
        methods: Iterable[str] | None = None,
    ) -> Fault:
        """Arm a fault of one of ``KINDS`` (see the module docstring)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (one of {', '.join(KINDS)})")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError(f"count must be a positive integer or null (every request), not {count!r}")
        chosen = frozenset(methods) if methods is not None else None
        if kind == "repeat_page_token":
            if chosen is not None and not chosen <= _LISTING_ONLY:
                raise ValueError("repeat_page_token applies to events.list only")
            chosen = _LISTING_ONLY
        fault = Fault(calendar_id, kind, status, reason, count, retry_after, stall_seconds, chosen)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, calendar_id: str | None, method: str) -> Fault | None:
        """Consume one hit of the first fault that applies to this request."""
        with self._lock:
            for fault in self._faults:
                if fault.applies(calendar_id, method):
                    fault.hits += 1
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._faults.clear()

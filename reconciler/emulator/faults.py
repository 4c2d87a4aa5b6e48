"""Fault injection: make the next N API requests fail, stall or drop the connection.

Tests use this to exercise retries, backoff and error classification against
exactly the responses Google sends (status, reason, domain, ``Retry-After``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Fault:
    """One armed fault; ``count`` requests are still to be hit."""

    calendar_id: str | None
    kind: str = "status"
    status: int = 500
    reason: str | None = None
    count: int = 1
    retry_after: float | None = None
    stall_seconds: float = 0.0
    methods: frozenset[str] | None = None
    hits: int = field(default=0)

    def applies(self, calendar_id: str | None, method: str) -> bool:
        """Whether this fault targets a request for ``calendar_id`` / ``method``."""
        if self.count <= 0:
            return False
        if self.calendar_id is not None and self.calendar_id != calendar_id:
            return False
        return self.methods is None or method in self.methods


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
        count: int = 1,
        retry_after: float | None = None,
        stall_seconds: float = 0.0,
        methods: Iterable[str] | None = None,
    ) -> Fault:
        """Arm a fault (``kind`` is "status", "stall" or "drop")."""
        if kind not in ("status", "stall", "drop"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(
            calendar_id,
            kind,
            status,
            reason,
            count,
            retry_after,
            stall_seconds,
            frozenset(methods) if methods is not None else None,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, calendar_id: str | None, method: str) -> Fault | None:
        """Consume one hit of the first fault that applies to this request."""
        with self._lock:
            for fault in self._faults:
                if fault.applies(calendar_id, method):
                    fault.count -= 1
                    fault.hits += 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._faults.clear()

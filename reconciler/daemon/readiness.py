"""What ``/healthz`` says about this ``run`` process (the database probe and the
staleness rule are added by :mod:`reconciler.daemon.metrics`).

Why: a ``run`` started while Google was unreachable used to answer 200
``{"status": "ok", "calendars": 0}`` for the whole outage. Now it is 503
``{"status": "starting", "reason": ...}`` until the calendar set has been
resolved once and (when there are calendars) a first pass has succeeded;
after that it is healthy while the main loop ticks and it is not stopping.
A pure function of what the daemon knows, so each answer is tested directly.
"""

from __future__ import annotations

from typing import Any

STALLED_SECONDS = 10.0  # the main loop has not ticked for this long: unhealthy


def readiness(*, calendars: int, unresolved: str | None, resolved: bool, passed: bool,
              tick_age: float, stopping: bool) -> tuple[bool, dict[str, Any]]:
    """``(healthy, body fields)`` for ``/healthz``.

    ``unresolved`` is why the calendar set could not be resolved yet (None
    while the first attempt runs), ``resolved`` whether it has been once,
    ``passed`` whether a pass of this process has succeeded.
    """
    detail: dict[str, Any] = {"calendars": calendars}
    if stopping:
        return False, {**detail, "problem": "stopping"}
    if tick_age >= STALLED_SECONDS:
        return False, {**detail, "problem": "main loop stalled"}
    if not resolved:
        why = unresolved or "first attempt in progress"
        return False, {"status": "starting", "reason": f"calendar set not resolved: {why}",
                       **detail}
    if calendars and not passed:
        return False, {"status": "starting", "reason": "no pass has succeeded yet", **detail}
    return True, detail

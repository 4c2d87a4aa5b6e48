"""Did-you-mean for calendar ids a user typed (``--calendar``).

Every command that takes ``--calendar`` rejects an id it does not know the same
way: a usage error (exit status 2) on one line that names the unknown ids and at
most five of the closest known ones (``difflib``), so a typo is fixed at a
glance even in a fleet of hundreds of calendars. Pure: no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

from reconciler.errors import ConfigError

MAX_SUGGESTIONS = 5


def closest(word: str, known: Iterable[str], n: int = MAX_SUGGESTIONS) -> list[str]:
    """Up to ``n`` known ids closest to ``word``, best first (may be empty)."""
    return difflib.get_close_matches(word, list(known), n=n, cutoff=0.5)


def unknown_calendars(requested: Iterable[str], known: Collection[str]) -> ConfigError | None:
    """The usage error for ids in ``requested`` that are not in ``known``, else ``None``.

    The message is one line: ``--calendar X: not a known calendar (did you mean A, B?)``;
    with no close match it says how many calendars are known instead.
    """
    unknown = [cid for cid in dict.fromkeys(requested) if cid not in known]
    if not unknown:
        return None
    suggestions: list[str] = []
    for cid in unknown:
        suggestions += [s for s in closest(cid, known) if s not in suggestions]
    hint = (f"did you mean {', '.join(suggestions[:MAX_SUGGESTIONS])}?" if suggestions
            else f"{len(known)} known; `reconciler status` lists them" if known
            else "no calendars known yet")
    return ConfigError(f"--calendar {', '.join(unknown)}: not a known calendar ({hint})")


def require_known(requested: Iterable[str], known: Collection[str]) -> None:
    """Raise the usage error of :func:`unknown_calendars` when any id is unknown."""
    error = unknown_calendars(requested, known)
    if error is not None:
        raise error

"""Did-you-mean for calendar ids a user typed (``--calendar``).

Every command that takes ``--calendar`` accepts what the config accepts
(``primary`` included: :func:`expand_primary`) and rejects an id it does not
know the same way: a usage error (exit status 2) on one line. A calendar that
exists but is not mirrored is "not in the config (FILE)"; anything else names
at most five of the closest known ids (``difflib``), so a typo is fixed at a
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


def expand_primary(requested: Iterable[str], primaries: Iterable[str]) -> list[str]:
    """``requested`` with ``primary`` replaced by the ids it stands for (in order, once each)."""
    ids: list[str] = []
    stands_for = list(primaries)
    for cid in requested:
        ids += stands_for if cid == "primary" and stands_for else [cid]
    return list(dict.fromkeys(ids))


def unknown_calendars(requested: Iterable[str], known: Collection[str], *,
                      elsewhere: Collection[str] = (),
                      config_file: object = None) -> ConfigError | None:
    """The usage error for ids in ``requested`` that are not in ``known``, else ``None``.

    The message is one line: ``--calendar X: not in the config (FILE)`` for ids
    in ``elsewhere`` (calendars that exist but are not mirrored), else
    ``--calendar X: not a known calendar (did you mean A, B?)``; with no close
    match it says how many calendars are known instead.
    """
    unknown = [cid for cid in dict.fromkeys(requested) if cid not in known]
    if not unknown:
        return None
    real = [cid for cid in unknown if cid in elsewhere]
    typos = [cid for cid in unknown if cid not in elsewhere]
    parts = []
    if real:
        where = f" ({config_file})" if config_file else ""
        parts.append(f"--calendar {', '.join(real)}: not in the config{where}")
    if typos:
        parts.append(_typos(typos, known))
    return ConfigError("; ".join(parts))


def _typos(unknown: list[str], known: Collection[str]) -> str:
    suggestions: list[str] = []
    for cid in unknown:
        suggestions += [s for s in closest(cid, known) if s not in suggestions]
    hint = (f"did you mean {', '.join(suggestions[:MAX_SUGGESTIONS])}?" if suggestions
            else f"{len(known)} known; `reconciler status` lists them" if known
            else "no calendars known yet")
    return f"--calendar {', '.join(unknown)}: not a known calendar ({hint})"


def require_known(requested: Iterable[str], known: Collection[str], *,
                  elsewhere: Collection[str] = (), config_file: object = None) -> None:
    """Raise the usage error of :func:`unknown_calendars` when any id is unknown."""
    error = unknown_calendars(requested, known, elsewhere=elsewhere, config_file=config_file)
    if error is not None:
        raise error

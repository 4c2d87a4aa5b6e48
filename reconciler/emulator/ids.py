"""Event identifiers: validation, generation and recurring-instance ids.

Google event ids are base32hex (``0-9a-v``), 5 to 1024 characters; instances of
a recurring event are ``<master>_<YYYYMMDDTHHMMSSZ>`` (timed) or
``<master>_<YYYYMMDD>`` (all-day).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime

_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_VALID = re.compile(r"[0-9a-v]{5,1024}")
_INSTANCE = re.compile(r"^(?P<master>.+)_(?P<stamp>\d{8}(?:T\d{6}Z)?)$")


def is_valid_event_id(event_id: str) -> bool:
    """True when ``event_id`` is a client-choosable id (base32hex, 5-1024 chars)."""
    return bool(_VALID.fullmatch(event_id))


def new_event_id() -> str:
    """Return a fresh random 26-character base32hex id, like Google's."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(26))


def instance_id(master_id: str, start: datetime | date) -> str:
    """Return the id of the instance of ``master_id`` that originally starts at ``start``."""
    if isinstance(start, datetime):
        return f"{master_id}_{start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    return f"{master_id}_{start.strftime('%Y%m%d')}"


def split_instance_id(event_id: str) -> tuple[str, datetime | date] | None:
    """Split an instance id into (master id, original start), or None if it is not one."""
    m = _INSTANCE.match(event_id)
    if not m:
        return None
    stamp = m.group("stamp")
    try:
        if "T" in stamp:
            return m.group("master"), datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return m.group("master"), datetime.strptime(stamp, "%Y%m%d").date()
    except ValueError:
        return None

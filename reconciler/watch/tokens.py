"""Channel ids and channel tokens.

Google echoes a channel's token in every notification, so the token is what
proves a POST came from a channel we opened. It is the hex HMAC-SHA256 of the
channel id under ``[watch] secret``: it names no user or calendar, needs no
storage, and a receiver on another host that shares only the database and the
secret can check it. Comparison is constant-time. Channel ids are random.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

CHANNEL_ID_PREFIX = "rc-"
MAX_CHANNEL_ID = 64


def new_channel_id() -> str:
    """A fresh random channel id (35 characters; Google allows 64)."""
    return CHANNEL_ID_PREFIX + secrets.token_hex(16)


def channel_token(secret: str, channel_id: str) -> str:
    """The token to send with ``events.watch`` for ``channel_id`` (64 hex chars)."""
    return hmac.new(secret.encode("utf-8"), channel_id.encode("utf-8"), hashlib.sha256).hexdigest()


def token_matches(secret: str, channel_id: str, token: str | None) -> bool:
    """Whether ``token`` is the one we issued for ``channel_id`` (constant time)."""
    if not token:
        return False
    expected = channel_token(secret, channel_id)
    return hmac.compare_digest(expected.encode("ascii"), token.encode("utf-8", "replace"))

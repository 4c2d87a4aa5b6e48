"""Opaque, tamper-evident page and sync tokens.

A token is base64url(JSON payload + HMAC-SHA256 tag). The emulator signs with a
per-instance secret, so a client can neither read meaning into a token nor forge
or edit one: a bad tag means "tampered" (410 for sync tokens, 400 for page tokens).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any


class TokenError(ValueError):
    """The token is malformed or its signature does not match."""


class TokenCodec:
    """Sign and verify token payloads with one secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        """Use ``secret`` (random if omitted; persist it to keep tokens valid)."""
        self.secret = secret if secret is not None else secrets.token_bytes(32)

    def encode(self, payload: dict[str, Any]) -> str:
        """Return an opaque token for ``payload``."""
        raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        tag = hmac.new(self.secret, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(tag + raw).decode().rstrip("=")

    def decode(self, token: str) -> dict[str, Any]:
        """Return the payload of a token this codec issued, or raise :class:`TokenError`."""
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as exc:
            raise TokenError("undecodable") from exc
        tag, raw = blob[:16], blob[16:]
        good = hmac.new(self.secret, raw, hashlib.sha256).digest()[:16]
        if len(tag) != 16 or not hmac.compare_digest(tag, good):
            raise TokenError("bad signature")
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise TokenError("bad payload") from exc
        if not isinstance(payload, dict):
            raise TokenError("bad payload")
        return payload

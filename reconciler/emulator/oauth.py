"""The emulator's OAuth 2.0 side: an authorization endpoint that consents at once, codes,
refresh tokens and expiring access tokens.

Why: ``reconciler auth login`` runs google-auth-oauthlib's real ``InstalledAppFlow``
(loopback redirect, PKCE, ``access_type=offline``); testing it end to end needs an
authorization server. This one behaves like Google's for an installed app:

- ``GET /o/oauth2/auth`` checks the client, the loopback ``redirect_uri`` and the
  scope, then "the test user consents" and it answers 302 to
  ``redirect_uri?code=…&state=…&scope=…`` (or ``?error=…`` for a request Google
  would reject after showing the screen);
- ``POST /token`` with ``grant_type=authorization_code`` exchanges a code once,
  for the same client and ``redirect_uri``, verifying the PKCE ``code_verifier``
  when the authorization request sent a ``code_challenge``; client credentials
  come from the form or from HTTP Basic auth (requests-oauthlib's default).

Invariants: a code is single-use and expires after 10 minutes on the emulator
clock; access tokens expire after ``access_ttl`` seconds on the same clock (so a
test can advance the clock, or call :meth:`OAuthProvider.expire_access_tokens`,
and the next API call answers 401); issued refresh tokens never expire unless
revoked through :meth:`Emulator.revoke_refresh_token`. Legacy refresh tokens
``emulator-user:EMAIL`` (written by tests by hand) keep working for any client.
Thread-safe: one lock guards all state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .clock import Clock

USER_TOKEN_PREFIX = "emulator-user:"
CODE_TTL_MS = 10 * 60 * 1000
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    user: str
    scope: str
    challenge: str | None
    method: str
    offline: bool
    expires_ms: int


@dataclass(frozen=True)
class _Access:
    user: str
    expires_ms: int


class AccessTokenExpired(Exception):
    """An access token this provider issued has expired (the API answers 401)."""


def _error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


def form_with_basic_auth(form: dict[str, str], authorization: str | None) -> dict[str, str]:
    """The token request's form with client credentials from an HTTP Basic header added."""
    if not authorization or not authorization.lower().startswith("basic "):
        return form
    try:
        decoded = base64.b64decode(authorization[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return form
    client_id, _, secret = decoded.partition(":")
    merged = dict(form)
    merged.setdefault("client_id", urllib.parse.unquote_plus(client_id))
    merged.setdefault("client_secret", urllib.parse.unquote_plus(secret))
    return merged


def _is_loopback(uri: str) -> bool:
    parts = urllib.parse.urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(uri)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def client_secrets_document(root_url: str, client_id: str, client_secret: str) -> dict[str, Any]:
    """A "Desktop app" client-secrets document (as the Cloud console downloads it) whose
    endpoints are this emulator's, for ``reconciler auth login --client-secrets FILE``."""
    root = root_url.rstrip("/")
    return {"installed": {
        "client_id": client_id, "client_secret": client_secret, "project_id": "emulator",
        "auth_uri": f"{root}/o/oauth2/auth", "token_uri": f"{root}/token",
        "redirect_uris": ["http://localhost"]}}


class OAuthProvider:
    """Clients, the consenting test user, codes and tokens of one emulator."""

    def __init__(self, clock: Clock, consent_user: str, access_ttl: int = 3600) -> None:
        """Consent as ``consent_user``; access tokens live ``access_ttl`` emulator seconds."""
        self.clock = clock
        self.consent_user = consent_user
        self.access_ttl = access_ttl
        self.clients: dict[str, str] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, str] = {}
        self._access: dict[str, _Access] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ test controls
    def register_client(self, client_id: str, client_secret: str) -> dict[str, str]:
        """Accept an OAuth client (what the Cloud console's 'Desktop app' client would be)."""
        with self._lock:
            self.clients[client_id] = client_secret
        return {"client_id": client_id}

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired now: the next API call answers 401."""
        now = self.clock.now_ms()
        with self._lock:
            self._access = {t: _Access(a.user, now - 1) for t, a in self._access.items()}

    def refresh_tokens(self) -> dict[str, str]:
        """Issued refresh tokens and the user each acts as."""
        with self._lock:
            return dict(self._refresh)

    # ------------------------------------------------------------- endpoints
    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """``GET /o/oauth2/auth``: (status, headers, JSON body). Consents for the test user."""
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        with self._lock:
            known = client_id in self.clients
        if not known:
            return 401, {}, _error("invalid_client", "The OAuth client was not found.")
        if not _is_loopback(redirect_uri):
            return 400, {}, _error("redirect_uri_mismatch",
                                   "redirect_uri must be a loopback http URL for a desktop client")
        state = query.get("state")
        reply: dict[str, str] = {}
        scope = query.get("scope", "")
        if query.get("response_type") != "code":
            reply = {"error": "unsupported_response_type"}
        elif not scope.strip():
            reply = {"error": "invalid_scope"}
        else:
            code = "emulator-code-" + secrets.token_urlsafe(16)
            with self._lock:
                self._codes[code] = _Code(
                    client_id, redirect_uri, self.consent_user, scope,
                    query.get("code_challenge"), query.get("code_challenge_method", "plain"),
                    query.get("access_type") == "offline", self.clock.now_ms() + CODE_TTL_MS)
            reply = {"code": code, "scope": scope}
        if state is not None:
            reply["state"] = state
        return 302, {"Location": _with_query(redirect_uri, reply)}, {}

    def exchange_code(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """``grant_type=authorization_code`` at ``/token``."""
        client_id = form.get("client_id", "")
        with self._lock:
            secret = self.clients.get(client_id)
            code = self._codes.pop(form.get("code", ""), None)
        if secret is None or not hmac.compare_digest(secret, form.get("client_secret", "")):
            return 401, _error("invalid_client", "Unauthorized")
        if code is None or code.expires_ms < self.clock.now_ms() or code.client_id != client_id:
            return 400, _error("invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != code.redirect_uri:
            return 400, _error("redirect_uri_mismatch", "Bad Request")
        if code.challenge is not None and not _pkce_ok(code, form.get("code_verifier", "")):
            return 400, _error("invalid_grant", "Invalid code verifier.")
        payload = self.issue_access(code.user)
        payload["scope"] = code.scope
        if code.offline:
            refresh = "emulator-refresh-" + secrets.token_urlsafe(24)
            with self._lock:
                self._refresh[refresh] = code.user
            payload["refresh_token"] = refresh
        return 200, payload

    def user_of_refresh_token(self, token: str) -> str | None:
        """The user an issued (or legacy ``emulator-user:``) refresh token acts as."""
        with self._lock:
            user = self._refresh.get(token)
        if user is None and token.startswith(USER_TOKEN_PREFIX) and len(token) > len(USER_TOKEN_PREFIX):
            user = token[len(USER_TOKEN_PREFIX):]
        return user

    def issue_access(self, user: str) -> dict[str, Any]:
        """A new access token acting as ``user`` (the token endpoint's answer)."""
        token = "emulator-access-" + secrets.token_hex(12)
        with self._lock:
            self._access[token] = _Access(user, self.clock.now_ms() + self.access_ttl * 1000)
        return {"access_token": token, "expires_in": self.access_ttl, "token_type": "Bearer"}

    def user_of_access_token(self, token: str) -> str | None:
        """The user of an issued access token, None if this provider never issued it.

        Raises :class:`AccessTokenExpired` for an issued token past its lifetime.
        """
        with self._lock:
            grant = self._access.get(token)
        if grant is None:
            return None
        if grant.expires_ms <= self.clock.now_ms():
            raise AccessTokenExpired(token)
        return grant.user


def _pkce_ok(code: _Code, verifier: str) -> bool:
    if code.challenge is None:
        return True
    if code.method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    else:
        expected = verifier
    return hmac.compare_digest(expected, code.challenge)

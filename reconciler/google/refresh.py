"""One token refresh per account at a time, however many threads share its credentials.

Why: every worker thread has its own API handle (``httplib2`` is not
thread-safe), but an account's google-auth credentials object is shared, and
google-auth does not serialise refreshes. After an access token expires, each
thread that sees it expired (or gets a 401) refreshed on its own: a pass over
40 calendars of one account sent up to 40 requests to the token endpoint.

:class:`SerialRefresh` wraps the account's credentials for the HTTP layer
(``google_auth_httplib2.AuthorizedHttp`` calls ``before_request`` before each
request and ``refresh`` after a 401). Both take one lock per account:

- ``before_request`` refreshes only when the token is not valid *under the
  lock*, so the threads that waited find the new token and send none;
- ``refresh`` after a 401 refreshes only when no other thread refreshed since
  this thread's request was sent (a generation number, read per thread), so a
  burst of 401s for the same old token is one token request.
- A refresh the server refused (:class:`~reconciler.errors.AuthFailed`) is
  remembered and raised again to every thread without another token request,
  until :meth:`SerialRefresh.retry` (a probe of a parked account) allows one.

Only public google-auth methods of the wrapped credentials are called
(``valid``, ``refresh``, ``before_request``); the wrapper keeps no token of
its own.
"""

from __future__ import annotations

import threading
from typing import Any

import google.auth.credentials
import google.auth.exceptions

from reconciler.errors import AuthFailed


class SerialRefresh(google.auth.credentials.Credentials):
    """An account's credentials as its threads share them: one refresh at a time."""

    def __init__(self, inner: google.auth.credentials.Credentials) -> None:
        super().__init__()
        self.inner = inner
        self._lock = threading.Lock()
        self._generation = 0  # refreshes that succeeded so far
        self._refused: AuthFailed | None = None  # the last refresh the server refused
        self._seen = threading.local()  # the generation this thread's last request carried

    @property
    def valid(self) -> bool:
        return bool(self.inner.valid)

    @property
    def expired(self) -> bool:
        return bool(self.inner.expired)

    def before_request(self, request: Any, method: str, url: str, headers: Any) -> None:
        """Refresh if needed (once, whichever thread gets here first), then sign ``headers``."""
        with self._lock:
            if not self.inner.valid:
                self._refresh_locked(request)
            self._seen.generation = self._generation
            self.inner.before_request(request, method, url, headers)

    def refresh(self, request: Any) -> None:
        """After a 401: refresh, unless another thread already did since this thread's request."""
        with self._lock:
            seen = getattr(self._seen, "generation", None)
            if seen is not None and seen != self._generation:
                return
            self._refresh_locked(request)

    def apply(self, headers: Any, token: str | None = None) -> None:
        self.inner.apply(headers, token=token)

    def retry(self) -> None:
        """Allow a new refresh after a refused one (the account is being probed again)."""
        with self._lock:
            self._refused = None

    def _refresh_locked(self, request: Any) -> None:
        refused = self._refused
        if refused is not None:  # a fresh exception per thread, the same line
            raise AuthFailed(str(refused), status=refused.status, reason=refused.reason)
        try:
            self.inner.refresh(request)
        except AuthFailed as exc:
            self._refused = exc
            raise
        except google.auth.exceptions.InvalidOperation:
            # Anonymous credentials (the emulator) have nothing to refresh: the
            # request is sent again as it was and its 401 is the failure.
            return
        self._generation += 1


__all__ = ["SerialRefresh"]

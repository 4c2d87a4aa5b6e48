"""Each account's handles for one process: credentials, API handles, engines, and its health.

Why a module of its own: credentials are loaded once per account and shared
by every worker thread, API handles and engines are one per thread and
account (``httplib2`` is not thread-safe), and an account whose credentials
Google refused is parked (``needs_reauth``) until a probe clears it. That is
all per-account state; the calendar set, the attempt and the pass only ask
for ``api``/``engine`` and report ``refused``/``ok``.

Invariants: one token refresh per account at a time
(:class:`~reconciler.google.refresh.SerialRefresh`); a healthy account costs
one statement per process (``mark_account_ok``), not one per poll; ``close``
stops every thread's engine and closes every HTTP handle (a config reload
must not leak them).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

import google.auth.credentials

from reconciler.clock import utcnow
from reconciler.config import AccountConfig, Config, announce_emulator
from reconciler.engine import CalendarSync
from reconciler.errors import AuthFailed, ReconcilerError
from reconciler.google.client import ApiPool, CalendarApi
from reconciler.google.credentials import identity_of, load_credentials
from reconciler.google.errors import Identity
from reconciler.google.refresh import SerialRefresh
from reconciler.google.retry import RetryPolicy
from reconciler.store import calendars

log = logging.getLogger("reconciler.service")


class AccountHandles:
    """Credentials, per-thread API handles and engines, and health of the config's accounts."""

    def __init__(self, config: Config, retry: RetryPolicy,
                 before_request: Callable[[str, str], None] | None = None) -> None:
        self.config = config
        self.retry = retry
        self.before_request = before_request
        self._credentials: dict[str, SerialRefresh] = {}
        self._lock = threading.Lock()
        self._ok: set[str] = set()
        self.pool = ApiPool(self._make_api)
        self._local = threading.local()
        self._engines: list[CalendarSync] = []

    # -- credentials and handles -------------------------------------------------

    def account(self, name: str) -> AccountConfig:
        """The config of account ``name`` (a stored row may name one the config dropped)."""
        try:
            return self.config.account(name)
        except KeyError:
            raise ReconcilerError(f"account {name!r} is not in the config any more") from None

    def credentials(self, name: str) -> SerialRefresh:
        """The account's credentials, loaded once and shared by its threads."""
        with self._lock:
            creds = self._credentials.get(name)
            if creds is None:
                account = self.account(name)
                creds = self._credentials[name] = SerialRefresh(load_credentials(
                    name, account.credentials, account.subject, self.config.google.emulator))
            return creds

    def identity(self, name: str) -> Identity:
        """Who the account's credentials act as (for advice in failure lines)."""
        with self._lock:
            creds = self._credentials.get(name)
        inner: google.auth.credentials.Credentials | None = (
            creds.inner if creds is not None else None)
        return identity_of(inner)

    def check(self) -> None:
        """Load every account's credentials now (no network): a missing or malformed
        file is a config error, reported before any calendar is touched."""
        for account in self.config.accounts:
            self.credentials(account.name)

    def _make_api(self, name: str) -> CalendarApi:
        announce_emulator(self.config)  # once per process, before the first request
        hook = None
        if self.before_request is not None:
            callback = self.before_request

            def hook(method: str) -> None:
                callback(name, method)

        return CalendarApi(self.credentials(name), api_endpoint=self.config.google.api_endpoint,
                           timeout=self.config.google.timeout, retry=self.retry,
                           before_request=hook)

    def sees_calendar(self, name: str, calendar_id: str) -> bool:
        """Whether account ``name`` can read ``calendar_id`` (``calendars.get``, on a
        handle of its own that is closed at once): a usage check of ``--calendar``, so
        it is not the first request the emulator switch announces."""
        api = CalendarApi(self.credentials(name), api_endpoint=self.config.google.api_endpoint,
                          timeout=self.config.google.timeout, retry=self.retry)
        try:
            api.get_calendar(calendar_id)
        except ReconcilerError:
            return False
        finally:
            api.close()
        return True

    def api(self, name: str) -> CalendarApi:
        """This thread's API handle for account ``name``."""
        return self.pool.for_account(name)

    def engine(self, name: str) -> CalendarSync:
        """This thread's engine for an account (one API handle, one prefetch thread)."""
        engines: dict[str, CalendarSync] | None = getattr(self._local, "engines", None)
        if engines is None:
            engines = self._local.engines = {}
        engine = engines.get(name)
        if engine is None:
            engine = engines[name] = CalendarSync(self.api(name), self.config.sync,
                                                  history=self.config.store.history,
                                                  occurrence_days=self.config.store.days())
            with self._lock:
                self._engines.append(engine)
        return engine

    def close(self) -> None:
        """Stop every engine's helper thread and close every HTTP handle."""
        with self._lock:
            engines, self._engines = self._engines, []
        for engine in engines:
            engine.close()
        self._local = threading.local()
        self.pool.close()

    # -- health: park, probe, ok ------------------------------------------------------

    @staticmethod
    def parked(name: str) -> bool:
        """Whether the account waits for a planned re-check of refused credentials."""
        row = calendars.get_account(name)
        return bool(row is not None and row.state == "needs_reauth"
                    and row.next_auth_retry is not None and row.next_auth_retry > utcnow())

    def park(self, name: str, error: str, next_retry: dt.datetime | None = None) -> None:
        """Mark an account ``needs_reauth`` (its credentials were rejected)."""
        self._ok.discard(name)
        calendars.set_account_state(name, "needs_reauth", error, next_retry=next_retry)

    def recheck(self, name: str) -> None:
        """Forget that ``name`` was healthy or refused, so the next request tries its
        credentials again and the next success clears a park another process (or an
        earlier run) recorded."""
        self._ok.discard(name)
        with self._lock:
            creds = self._credentials.get(name)
        if creds is not None:
            creds.retry()

    def refused(self, name: str, exc: ReconcilerError) -> None:
        """A call of the account failed: park it when its credentials were refused."""
        if isinstance(exc, AuthFailed):
            self.park(name, str(exc))

    def ok(self, name: str) -> None:
        """A call of the account succeeded (a statement once per process while healthy)."""
        if name in self._ok:
            return
        calendars.mark_account_ok(name)
        self._ok.add(name)


__all__ = ["AccountHandles"]

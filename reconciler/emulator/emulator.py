"""The :class:`Emulator`: all state of a fake Google Calendar account space.

One object owns calendars, ACLs, events, tokens, channels, faults, the clock and
the request log, behind one lock. The HTTP layer (``server.py``) calls its
``api_*`` methods; tests and the control API call the plain methods, which follow
the same rules as the HTTP API.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from . import errors, events, listing
from .clock import Clock
from .concurrency import InFlight
from .faults import Fault, FaultBook
from .latency import Latency
from .model import Calendar, Membership, dumps
from .oauth import AccessTokenExpired, OAuthProvider
from .tokens import TokenCodec
from .watch import ChannelHub

USER_TOKEN_PREFIX = "emulator-user:"


@dataclass
class RequestRecord:
    """One API request as the emulator saw it (for counting and overlap checks)."""

    method: str
    http_method: str
    path: str
    calendar_id: str | None
    params: dict[str, list[str]]
    user: str
    start: float
    end: float
    status: int
    thread: str
    delay: float = 0.0  # seconds of configured latency this answer waited

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by the HTTP control API)."""
        return asdict(self)


class Emulator:
    """A Calendar v3 backend in memory, driven over HTTP or directly from tests."""

    def __init__(
        self,
        default_user: str = "user@example.com",
        token_retention: timedelta = timedelta(days=7),
        updated_min_limit: timedelta = timedelta(days=29),
        secret: bytes | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Create an empty emulator; calendars appear via :meth:`add_calendar` or on use.

        ``rng`` draws latency jitter (pass a seeded ``random.Random`` for reproducible runs).
        """
        self.default_user = default_user
        self.token_retention = token_retention
        self.updated_min_limit = updated_min_limit
        self.lock = threading.RLock()
        self.clock = Clock()
        self.codec = TokenCodec(secret)
        self.faults = FaultBook()
        self.latency = Latency(rng)
        self.in_flight = InFlight()
        self.hub = ChannelHub(self.clock)
        self.calendars: dict[str, Calendar] = {}
        self.removed: dict[str, Calendar] = {}
        self.memberships: dict[str, dict[str, Membership]] = {}
        self.acl_seq = 0
        self.acl_generation = secrets.token_hex(4)
        self.revoked_refresh: set[str] = set()
        self.revoked_access: set[str] = set()
        self.refused_subjects: set[str] = set()  # JWT grants for these answer unauthorized_client
        self.oauth = OAuthProvider(self.clock, default_user)
        self._log: list[RequestRecord] = []
        self.token_requests: list[str] = []  # grant_type of every POST /token, in order
        self._empty_pages: dict[str | None, int] = {}
        self.base_url = ""
        self.host = ""

    # ----------------------------------------------------------- identity / ACL
    def user_for(self, authorization: str | None) -> str:
        """Map an Authorization header to a user; revoked access tokens -> 401."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return self.default_user
        token = authorization[7:].strip()
        if token in self.revoked_access:
            raise errors.auth_error()
        try:
            issued = self.oauth.user_of_access_token(token)
        except AccessTokenExpired:
            raise errors.auth_error() from None
        if issued is not None:
            return issued
        if token.startswith(USER_TOKEN_PREFIX) and len(token) > len(USER_TOKEN_PREFIX):
            return token[len(USER_TOKEN_PREFIX) :]
        return self.default_user

    def _set_membership(self, user: str, cal_id: str, role: str | None, hidden: bool = False) -> None:
        self.acl_seq += 1
        self.memberships.setdefault(user, {})[cal_id] = Membership(
            self.acl_seq, self.clock.now_ms(), role, hidden
        )

    def _ensure_primary(self, user: str) -> None:
        if user not in self.calendars:
            self.add_calendar(user, summary=user, owners=[user])

    def resolve(self, user: str, cal_id: str) -> Calendar:
        """The calendar ``cal_id`` as ``user`` addresses it (404 if not visible)."""
        if cal_id == "primary" or cal_id == user:
            cal_id = user
            self._ensure_primary(user)
        cal = self.calendars.get(cal_id)
        if cal is None or cal.role_of(user) is None:
            raise errors.not_found()
        return cal

    def _limits(self, cal_key: str | None, repeat_page_token: bool = False) -> listing.Limits:
        force = False
        for key in (cal_key, None):
            if self._empty_pages.get(key, 0) > 0:
                self._empty_pages[key] -= 1
                force = True
                break
        return listing.Limits(
            self.clock.now_ms(),
            int(self.token_retention.total_seconds() * 1000),
            int(self.updated_min_limit.total_seconds() * 1000),
            force,
            repeat_page_token,
        )

    # ----------------------------------------------------------------- API paths
    def api_list_events(
        self, user: str, cal_id: str, params: listing.Params, repeat_page_token: bool = False
    ) -> bytes:
        """events.list (``repeat_page_token``: the hostile never-ending listing fault)."""
        with self.lock:
            cal = self.resolve(user, cal_id)
            role = cal.role_of(user) or "reader"
            limits = self._limits(cal.id, repeat_page_token)
            return listing.list_events(cal, role, params, self.codec, limits)

    def api_instances(self, user: str, cal_id: str, event_id: str, params: listing.Params) -> bytes:
        """events.instances."""
        with self.lock:
            cal = self.resolve(user, cal_id)
            role = cal.role_of(user) or "reader"
            return listing.list_instances(cal, role, event_id, params, self.codec, self._limits(None))

    def api_get_event(self, user: str, cal_id: str, event_id: str) -> bytes:
        """events.get (stored version, or a generated recurring instance)."""
        with self.lock:
            return self._event_bytes(self.resolve(user, cal_id), event_id)

    def api_write(self, op: str, user: str, cal_id: str, event_id: str | None, body: Any) -> bytes:
        """events.insert / patch / update / delete; returns the response body."""
        with self.lock:
            cal = self.resolve(user, cal_id)
            now = self.clock.now_ms()
            if op == "insert":
                data = events.insert(cal, body, user, now).data
            elif op == "patch":
                data = events.patch(cal, str(event_id), body, user, now).data
            elif op == "update":
                data = events.update(cal, str(event_id), body, user, now).data
            elif op == "delete":
                events.delete(cal, str(event_id), user, now)
                data = b""
            else:
                raise ValueError(op)
            cal_key = cal.id
        self.hub.notify(cal_key)
        return data

    def api_calendar_list(self, user: str, params: listing.Params) -> bytes:
        """calendarList.list."""
        with self.lock:
            self._ensure_primary(user)
            return listing.list_calendars(
                user,
                self.memberships.get(user, {}),
                self.calendars,
                self.removed,
                self.acl_seq,
                self.acl_generation,
                params,
                self.codec,
                self._limits(None),
            )

    def api_calendar_list_get(self, user: str, cal_id: str) -> bytes:
        """calendarList.get."""
        with self.lock:
            cal = self.resolve(user, cal_id)
            m = self.memberships.get(user, {}).get(cal.id)
            if m is None or m.role is None:
                raise errors.not_found()
            return listing.calendar_entry(cal, user, m)

    def api_calendar_get(self, user: str, cal_id: str) -> bytes:
        """calendars.get."""
        with self.lock:
            cal = self.resolve(user, cal_id)
            res: dict[str, Any] = {
                "kind": "calendar#calendar",
                "etag": cal.etag(),
                "id": cal.id,
                "summary": cal.summary,
            }
            if cal.description is not None:
                res["description"] = cal.description
            res["timeZone"] = cal.time_zone
            res["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
            return dumps(res)

    def api_watch(self, user: str, cal_id: str, body: Any) -> bytes:
        """events.watch."""
        with self.lock:
            cal = self.resolve(user, cal_id)
            base = self.base_url or "https://www.googleapis.com/calendar/v3/"
            uri = f"{base}calendars/{quote(cal.id, safe='')}/events?alt=json"
            return dumps(self.hub.open(cal.id, body, uri, user))

    def api_stop(self, body: Any) -> None:
        """channels.stop."""
        self.hub.stop(body)

    def oauth_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The OAuth token endpoint: authorization-code, refresh-token and JWT-bearer grants
        (access tokens expire on the emulator clock; see ``oauth.py``). Each request is
        counted in ``token_requests``."""
        grant = form.get("grant_type", "")
        with self.lock:
            self.token_requests.append(grant)
        if grant == "authorization_code":
            return self.oauth.exchange_code(form)
        if grant == "refresh_token":
            rt = form.get("refresh_token", "")
            if not rt or rt in self.revoked_refresh:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }
            return 200, self.oauth.issue_access(self.oauth.user_of_refresh_token(rt) or self.default_user)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            claims: dict[str, Any] = {}
            try:
                part = form.get("assertion", "").split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            except (IndexError, ValueError):
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}
            sub = claims.get("sub") or claims.get("iss")
            if claims.get("sub") in self.refused_subjects:  # delegation not authorised
                return 400, {"error": "unauthorized_client",
                             "error_description": "Client is unauthorized to retrieve access "
                                                  "tokens using this method."}
            token = f"{USER_TOKEN_PREFIX}{sub}" if sub else "emulator-access-" + secrets.token_hex(12)
        else:
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": f"Invalid grant_type: {grant}",
            }
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    # ------------------------------------------------------------- request log
    def record(self, rec: RequestRecord) -> None:
        """Append one API request to the log."""
        with self.lock:
            self._log.append(rec)

    @property
    def request_log(self) -> list[RequestRecord]:
        """A snapshot of every API request served since the last clear."""
        with self.lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        """Forget the logged requests."""
        with self.lock:
            self._log.clear()

    # --------------------------------------------------------------- control API
    def add_calendar(
        self,
        calendar_id: str,
        summary: str | None = None,
        owners: list[str] | None = None,
        time_zone: str = "UTC",
        description: str | None = None,
        default_reminders: list[dict[str, Any]] | None = None,
    ) -> None:
        """Create a calendar owned by ``owners`` (default: the default user)."""
        with self.lock:
            if calendar_id in self.calendars:
                raise errors.duplicate()
            now = self.clock.now_ms()
            cal = Calendar(
                calendar_id,
                summary or calendar_id,
                time_zone,
                description,
                list(owners or [self.default_user]),
                default_reminders=list(default_reminders or []),
                created_ms=now,
                updated_ms=now,
            )
            self.calendars[calendar_id] = cal
            self.removed.pop(calendar_id, None)
            for owner in cal.owners:
                self._set_membership(owner, calendar_id, "owner")

    def remove_calendar(self, calendar_id: str) -> None:
        """Delete a calendar: 404 from now on, ``deleted`` in incremental calendarLists."""
        with self.lock:
            cal = self.calendars.pop(calendar_id, None)
            if cal is None:
                raise errors.not_found()
            self.removed[calendar_id] = cal
            for user, entries in self.memberships.items():
                if calendar_id in entries and entries[calendar_id].role is not None:
                    self._set_membership(user, calendar_id, None)

    def share(self, calendar_id: str, user: str, role: str = "writer", hidden: bool = False) -> None:
        """Give ``user`` access (it appears in their calendarList)."""
        with self.lock:
            cal = self._cal(calendar_id)
            if role == "owner":
                if user not in cal.owners:
                    cal.owners.append(user)
            else:
                cal.shares[user] = role
            self._set_membership(user, calendar_id, role, hidden)

    def unshare(self, calendar_id: str, user: str) -> None:
        """Take access away from ``user`` (404 for them; ``deleted`` in their list)."""
        with self.lock:
            cal = self._cal(calendar_id)
            cal.shares.pop(user, None)
            if user in cal.owners:
                cal.owners.remove(user)
            self._set_membership(user, calendar_id, None)

    def _cal(self, calendar_id: str) -> Calendar:
        if calendar_id == "primary":
            calendar_id = self.default_user
            self._ensure_primary(calendar_id)
        cal = self.calendars.get(calendar_id)
        if cal is None:
            raise errors.not_found()
        return cal

    def _writer(self, cal: Calendar, user: str | None) -> str:
        if user is not None:
            return user
        if cal.role_of(self.default_user) in events.WRITE_ROLES or not cal.owners:
            return self.default_user
        return cal.owners[0]

    def _write(
        self, op: str, cal_id: str, event_id: str | None, body: Any, user: str | None
    ) -> dict[str, Any]:
        with self.lock:
            cal = self._cal(cal_id)
            who = self._writer(cal, user)
            data = self.api_write(op, who, cal.id, event_id, body)
        return json.loads(data) if data else {}

    def insert_event(self, calendar_id: str, body: dict[str, Any], user: str | None = None) -> dict[str, Any]:
        """events.insert as ``user`` (default: a writer of the calendar)."""
        return self._write("insert", calendar_id, None, body, user)

    def patch_event(
        self, calendar_id: str, event_id: str, body: dict[str, Any], user: str | None = None
    ) -> dict[str, Any]:
        """events.patch as ``user``."""
        return self._write("patch", calendar_id, event_id, body, user)

    def update_event(
        self, calendar_id: str, event_id: str, body: dict[str, Any], user: str | None = None
    ) -> dict[str, Any]:
        """events.update as ``user``."""
        return self._write("update", calendar_id, event_id, body, user)

    def delete_event(self, calendar_id: str, event_id: str, user: str | None = None) -> None:
        """events.delete as ``user``."""
        self._write("delete", calendar_id, event_id, None, user)

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """events.get, bypassing the ACL (ground truth for one event)."""
        with self.lock:
            cal = self._cal(calendar_id)
            return json.loads(self._event_bytes(cal, event_id))

    @staticmethod
    def _event_bytes(cal: Calendar, event_id: str) -> bytes:
        rec = cal.events.get(event_id)
        if rec is not None:
            return rec.current.data
        inst = events.virtual_instance(cal, event_id)
        if inst is None:
            raise errors.not_found()
        return dumps(inst)

    def put_raw(self, calendar_id: str, resource: dict[str, Any]) -> None:
        """Store ``resource`` exactly as given (no rewriting) as the event's current version."""
        with self.lock:
            cal = self._cal(calendar_id)
            events.put_raw(cal, resource, self.clock.now_ms())
        self.hub.notify(cal.id)

    def seed_raw(self, calendar_id: str, resources: list[dict[str, Any]]) -> None:
        """:meth:`put_raw` for many resources."""
        for res in resources:
            self.put_raw(calendar_id, res)

    def events(self, calendar_id: str, include_cancelled: bool = True) -> list[dict[str, Any]]:
        """Ground truth: every event as served (stubs included unless told otherwise), by id."""
        with self.lock:
            cal = self._cal(calendar_id)
            return [
                json.loads(cal.events[i].current.data)
                for i in cal.ids
                if include_cancelled or not cal.events[i].current.cancelled
            ]

    def dump(self) -> dict[str, Any]:
        """Every calendar with its ACL and events as events.list(showDeleted=true) serves them."""
        with self.lock:
            return {
                "calendars": [
                    {
                        "id": c.id,
                        "summary": c.summary,
                        "timeZone": c.time_zone,
                        "description": c.description,
                        "owners": list(c.owners),
                        "shares": dict(c.shares),
                        "updated": listing.format_ms(c.updated_ms),
                        "events": self.events(c.id),
                    }
                    for c in self.calendars.values()
                ]
            }

    def expire_tokens(self, calendar_id: str | None = None) -> None:
        """Invalidate the sync tokens of one calendar (or all): next use answers 410."""
        with self.lock:
            cals = [self._cal(calendar_id)] if calendar_id else list(self.calendars.values())
            for cal in cals:
                cal.generation = secrets.token_hex(4)
            if calendar_id is None:
                self.acl_generation = secrets.token_hex(4)

    def inject_fault(
        self,
        calendar_id: str | None,
        kind: str = "status",
        status: int = 500,
        reason: str | None = None,
        count: int | None = 1,
        retry_after: float | None = None,
        stall_seconds: float = 0.0,
        methods: set[str] | list[str] | None = None,
    ) -> Fault:
        """Make the next ``count`` matching API requests (None: all) misbehave as ``kind`` says.

        Kinds: "status", "stall", "drop", "repeat_page_token", "html", "json_array",
        "empty", "truncated"; see :mod:`reconciler.emulator.faults`.
        """
        return self.faults.add(calendar_id, kind, status, reason, count, retry_after, stall_seconds, methods)

    def set_latency(self, fixed_ms: float = 0.0, per_item_ms: float = 0.0, jitter_ms: float = 0.0) -> None:
        """Delay every API answer by fixed + per_item * items returned + uniform(0, jitter) ms.

        The delay is slept in the request's own thread with no lock held, so
        concurrent requests overlap as they do against Google. All zero: no delay.
        """
        self.latency.set(fixed_ms, per_item_ms, jitter_ms)

    def concurrency(self, reset: bool = False) -> dict[str, int]:
        """API requests in flight now and the most at once since the last reset.

        With ``reset`` the high-water mark restarts (after the snapshot is taken).
        """
        snap = self.in_flight.snapshot()
        if reset:
            self.in_flight.reset()
        return snap

    def clear_faults(self) -> None:
        """Disarm every injected fault."""
        self.faults.clear()

    def empty_pages(self, calendar_id: str | None, count: int = 1) -> None:
        """Answer the next ``count`` events.list requests with an empty page + nextPageToken."""
        with self.lock:
            self._empty_pages[calendar_id] = self._empty_pages.get(calendar_id, 0) + count

    def revoke_refresh_token(self, token: str) -> None:
        """Make the token endpoint answer 400 invalid_grant for this refresh token."""
        with self.lock:
            self.revoked_refresh.add(token)

    def revoke_access_token(self, token: str) -> None:
        """Make API requests bearing this access token answer 401 authError."""
        with self.lock:
            self.revoked_access.add(token)

    def channels(self) -> list[dict[str, Any]]:
        """Open watch channels."""
        return self.hub.channels()

    def drop_notifications(self, n: int) -> None:
        """Lose the next ``n`` push notifications."""
        self.hub.drop_notifications(n)

    def pause_notifications(self) -> None:
        """Hold push notifications until :meth:`resume_notifications`."""
        self.hub.pause()

    def resume_notifications(self) -> None:
        """Deliver held push notifications."""
        self.hub.resume()

    def deliveries(self) -> list[dict[str, Any]]:
        """Every push notification attempted (or dropped), oldest first."""
        return [asdict(d) for d in list(self.hub.deliveries)]

    def set_time(self, when: datetime) -> None:
        """Shortcut for ``clock.set``."""
        self.clock.set(when)

    def close(self) -> None:
        """Stop background threads."""
        self.hub.close()

"""The Calendar API as the engine sees it: a few typed calls, retried and translated.

Built on the real google-api-python-client with the discovery document it
ships (no network at build time). ``httplib2`` is not thread-safe, so a
``CalendarApi`` belongs to one thread: :class:`ApiPool` hands each thread its
own, per account. Every request goes through ``_execute`` (quota budget,
retries, error translation) and nothing else talks HTTP. The decode step is
part of the translation: a 200 whose body is not the resource asked for (HTML,
a JSON array, an empty or cut body, a page without an ``items`` list)
raises :class:`~reconciler.errors.MalformedResponse`, a transient error
retried like a 5xx, never a ``ValueError`` traceback. ``events.list`` pages,
the bulk of the traffic, are asked for as compact JSON (``prettyPrint=false``)
and decoded once by :mod:`reconciler.google.pages` (items keep their raw
bytes); a page that decoder cannot split takes the general path below.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import google.auth.credentials
import google_auth_httplib2
import httplib2
import orjson
from googleapiclient.discovery import build
from googleapiclient.model import JsonModel

from reconciler.errors import GoogleError, MalformedResponse
from reconciler.eventfields import MAX_DEPTH, prune_deep
from reconciler.google.errors import translate
from reconciler.google.pages import decode_events_page
from reconciler.google.retry import RetryPolicy, call_with_retries

RequestHook = Callable[[str], None]
# A page is cut at this depth when it is too deep to parse; deeper than MAX_DEPTH
# plus the page's own two levels, so a cut event is always refused, never stored.
PRUNE_DEPTH = MAX_DEPTH + 8


class FastJsonModel(JsonModel):
    """The client's JSON model with orjson for responses.

    Parsing the response is the largest single cost of a full sync (a page of
    2,500 events is megabytes of JSON); orjson does it several times faster.
    Anything orjson refuses (integers beyond 64 bits) falls back to the
    standard parser, so nothing Google can send is rejected.
    """

    def deserialize(self, content: bytes | str) -> Any:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            try:
                return super().deserialize(content)
            except RecursionError:
                # One pathologically nested event must not sink its page: cut the
                # nesting (that event is then refused by the planner, alone).
                body = _decode_pruned(content)
            except ValueError as exc:  # not JSON at all
                raise MalformedResponse(
                    f"the API answered 200 with a body that is not JSON "
                    f"({_describe_body(content)})") from exc
        if self._data_wrapper and isinstance(body, dict) and "data" in body:
            body = body["data"]
        return body


def _decode_pruned(content: bytes | str) -> Any:
    """Decode a page whose nesting defeats the parser, deep subtrees cut (see prune_deep)."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    pruned = prune_deep(text, PRUNE_DEPTH)
    try:
        return orjson.loads(pruned)
    except orjson.JSONDecodeError:
        pass
    try:  # what orjson refuses besides depth: lone surrogate escapes, huge integers
        return json.loads(pruned)
    except (ValueError, RecursionError) as exc:
        raise MalformedResponse(f"the API answered 200 with a body that is not JSON "
                                f"({_describe_body(content)})") from exc


def _describe_body(content: bytes | str) -> str:
    if not content:
        return "empty body"
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    start = " ".join(text[:40].split())
    return f"{len(content)} bytes starting {start!r}"


def _resource(body: Any, what: str) -> dict[str, Any]:
    """``body`` if it is a JSON object, else ``MalformedResponse``."""
    if not isinstance(body, dict):
        raise MalformedResponse(f"the API answered 200 with a JSON {type(body).__name__} "
                                f"where {what} was expected")
    return body


def _page(body: Any, what: str) -> dict[str, Any]:
    """``body`` if it is a list page: an object with an ``items`` list.

    A single item that is not an object is the planner's business (one bad
    event, skipped and counted), not a reason to refuse the page.
    """
    page = _resource(body, what)
    if not isinstance(page.get("items"), list):
        raise MalformedResponse(f"the API answered 200 with a {what} without an items list")
    token = page.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise MalformedResponse(f"the API answered 200 with a {what} whose nextPageToken "
                                "is not a string")
    return page


_RESOURCES: dict[str | None, tuple[FastJsonModel, Any, Any]] = {}
_RESOURCES_LOCK = threading.Lock()


def _shared_resource(api_endpoint: str | None) -> tuple[FastJsonModel, Any, Any]:
    """The Calendar API resource for an endpoint (its model, the service, its
    ``events()``), built once per process.

    Building it parses the discovery document (~10 ms of CPU); with a handle
    per thread and account (32 threads x N accounts) that was most of a
    start-up. Requests are only *built* from the shared resource (read-only);
    each is executed on the calling handle's own ``http``, so nothing
    thread-unsafe is shared. Its own ``http`` is never used.
    """
    with _RESOURCES_LOCK:
        shared = _RESOURCES.get(api_endpoint)
        if shared is None:
            model = FastJsonModel(data_wrapper=False)
            options = {"api_endpoint": api_endpoint} if api_endpoint else None
            service = build("calendar", "v3", http=httplib2.Http(), static_discovery=True,
                            client_options=options, cache_discovery=False, model=model)
            shared = _RESOURCES[api_endpoint] = (model, service, service.events())
        return shared


class CalendarApi:
    """One thread's handle on the Calendar API for one account."""

    def __init__(self, credentials: google.auth.credentials.Credentials, *,
                 api_endpoint: str | None = None, timeout: float = 60.0,
                 retry: RetryPolicy | None = None,
                 before_request: RequestHook | None = None) -> None:
        # This handle's own connection (httplib2 is not thread-safe) carrying the
        # account's credentials; every request is executed on it.
        self._http = google_auth_httplib2.AuthorizedHttp(credentials,
                                                         http=httplib2.Http(timeout=timeout))
        self._model, self._service, self._events = _shared_resource(api_endpoint)
        self._retry = retry or RetryPolicy()
        self._before_request = before_request
        self.requests = 0

    def close(self) -> None:
        """Close the HTTP connections of this handle (a config reload replaces it)."""
        self._http.http.close()

    def _execute(self, method: str, make_request: Callable[[], Any],
                 decode: Callable[[Any], dict[str, Any]] | None = None) -> Any:
        def attempt() -> Any:
            if self._before_request is not None:
                self._before_request(method)
            self.requests += 1
            try:
                body = make_request().execute(http=self._http, num_retries=0)
                return decode(body) if decode is not None else body
            except Exception as exc:
                translated = translate(exc)
                if translated is None:
                    raise
                raise translated from exc

        return call_with_retries(attempt, self._retry)

    def list_events(self, calendar_id: str, *, sync_token: str | None = None,
                    page_token: str | None = None, updated_min: str | None = None,
                    max_results: int = 2500, time_min: str | None = None,
                    event_types: list[str] | None = None) -> dict[str, Any]:
        """One page of ``events.list`` with deleted events, never expanded into instances
        (``singleEvents`` is left at its default, false); ``time_min`` and
        ``event_types`` filter as Google does (``timeMin`` never with a sync token)."""
        params: dict[str, Any] = {"calendarId": calendar_id, "showDeleted": True,
                                  "maxResults": max_results, "prettyPrint": False}
        if sync_token:
            params["syncToken"] = sync_token
        if page_token:
            params["pageToken"] = page_token
        if updated_min:
            params["updatedMin"] = updated_min
        if time_min:
            params["timeMin"] = time_min
        if event_types:
            params["eventTypes"] = list(event_types)
        events = self._events
        model = self._model

        def events_page(resp: Any, content: bytes) -> Any:
            if 200 <= resp.status < 300 and resp.status != 204:
                page = decode_events_page(content)
                if page is not None:
                    return page
            return model.response(resp, content)  # errors, and pages msgspec cannot split

        def request() -> Any:
            call = events.list(**params)
            call.postproc = events_page
            return call

        return dict(self._execute("events.list", request,
                                  lambda body: _page(body, "events page")))

    def get_calendar(self, calendar_id: str) -> dict[str, Any]:
        """``calendars.get``: used once to resolve ``primary`` to a real id."""
        calendars = self._service.calendars()
        return dict(self._execute("calendars.get", lambda: calendars.get(calendarId=calendar_id),
                                  lambda body: _resource(body, "calendar")))

    def list_calendar_list(self, *, sync_token: str | None = None,
                           page_token: str | None = None) -> dict[str, Any]:
        """One page of the account's ``calendarList``, hidden and deleted entries included."""
        params: dict[str, Any] = {"showHidden": True, "maxResults": 250}
        if sync_token:
            params["syncToken"] = sync_token
            params["showDeleted"] = True
        if page_token:
            params["pageToken"] = page_token
        entries = self._service.calendarList()
        return dict(self._execute("calendarList.list", lambda: entries.list(**params),
                                  lambda body: _page(body, "calendarList page")))

    def watch_events(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``events.watch``: open a push channel for a calendar."""
        events = self._events
        return dict(self._execute("events.watch",
                                  lambda: events.watch(calendarId=calendar_id, body=body),
                                  lambda answer: _resource(answer, "channel")))

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """``channels.stop``: close a push channel."""
        channels = self._service.channels()
        self._execute("channels.stop",
                      lambda: channels.stop(body={"id": channel_id, "resourceId": resource_id}))


class ApiPool:
    """Per-thread, per-account ``CalendarApi`` instances built on first use."""

    def __init__(self, factory: Callable[[str], CalendarApi]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made: list[CalendarApi] = []

    def for_account(self, account: str) -> CalendarApi:
        """This thread's API handle for ``account``."""
        cache: dict[str, CalendarApi] | None = getattr(self._local, "apis", None)
        if cache is None:
            cache = self._local.apis = {}
        api = cache.get(account)
        if api is None:
            api = cache[account] = self._factory(account)
            with self._lock:
                self._made.append(api)
        return api

    def close(self) -> None:
        """Close every handle made so far, in every thread (none may be in use)."""
        with self._lock:
            made, self._made = self._made, []
            self._local = threading.local()  # drop the per-thread caches with them
        for api in made:
            try:
                api.close()
            except Exception:  # closing a dead connection is no failure
                logging.getLogger("reconciler.google").debug("closing an API handle failed",
                                                             exc_info=True)


__all__ = ["ApiPool", "CalendarApi", "GoogleError"]

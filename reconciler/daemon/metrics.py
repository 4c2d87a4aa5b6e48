"""Prometheus metrics and the ``/healthz`` + ``/metrics`` HTTP endpoint, in one place.

Counters are updated by the scheduler as things happen; per-calendar lag and
the leases this process holds are read from the database, at most every
:data:`FLEET_CACHE_SECONDS` (scrapes in between are served from memory), so
they are right even for calendars another process syncs and a scrape's cost
is bounded. ``[metrics] hash_calendar_ids`` replaces calendar ids (people's
e-mail addresses) in labels by a pseudonym. A private registry keeps several
daemons in one test process apart.

``/healthz`` answers 503 while the database is unreachable or not answering
(probed by one thread of its own, with a deadline, so a frozen server makes
the answer 503 rather than hang), or when no pass has succeeded in any process
for :data:`STALE_INTERVALS` intervals (the newest ``last_success`` of the
mirror, and this process's own passes), past a start-up grace of as long.
The body says "database unavailable"; the driver's text (hosts, users) goes to
the log only. The server is waitress (:class:`HealthServer`): idle connections
hold no thread and time out, open connections are capped. A request's
database connection is closed when it ends, so scrapes leave none behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from reconciler.clock import utcnow
from reconciler.errors import ConfigError, DatabaseUnavailable, first_line
from reconciler.outcome import PassOutcome
from reconciler.store import close_thread_connection, fleet

log = logging.getLogger("reconciler.daemon.metrics")

STALE_INTERVALS = 3  # no successful pass for this many intervals: unhealthy
PROBE_TIMEOUT = 3.0  # seconds /healthz waits for the database to answer
FLEET_CACHE_SECONDS = 15.0  # the per-calendar figures are read at most this often
HTTP_THREADS = 2  # requests served at once (a scrape and a health check)
CONNECTION_LIMIT = 100  # open connections; more wait in the listen backlog


class Metrics:
    """Every metric ``reconciler run`` exports."""

    def __init__(self, owners: Callable[[], list[str]] | None = None,
                 default_interval: Callable[[], int] | None = None, *,
                 interval: Callable[[Any], float] | None = None,
                 hash_calendar_ids: Callable[[], bool] = lambda: False,
                 fleet_cache_seconds: float = FLEET_CACHE_SECONDS) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.syncs = Counter("reconciler_syncs", "Calendar passes completed, by mode.",
                             ["mode"], registry=r)
        self.failures = Counter("reconciler_sync_failures",
                                "Calendar passes that failed, by error kind.", ["kind"], registry=r)
        self.skips = Counter("reconciler_sync_skips",
                             "Job runs that did not sync (lease held elsewhere, not due, ...).",
                             ["reason"], registry=r)
        self.requests = Counter("reconciler_api_requests", "Calendar API requests sent, by method.",
                                ["method"], registry=r)
        self.quota_waits = Counter("reconciler_quota_wait_seconds",
                                   "Seconds requests waited for the client-side quota budget.",
                                   registry=r)
        self.events = Counter("reconciler_events_applied",
                              "Event changes written to the mirror, by kind.", ["kind"], registry=r)
        self.audits = Counter("reconciler_audits", "Audit passes (periodic full listings).",
                              registry=r)
        self.drift = Counter("reconciler_audit_drift",
                             "Rows an audit found wrong and repaired, by kind.", ["kind"],
                             registry=r)
        self.bad_events = Counter("reconciler_bad_events",
                                  "Events that could not be mirrored as sent (refused, or "
                                  "stored with adjusted derived columns).", registry=r)
        self.sync_requests = Counter("reconciler_sync_soon_passes",
                                     "Passes run because of a 'sync soon' request.", registry=r)
        self.duration = Histogram("reconciler_sync_duration_seconds", "Duration of one pass.",
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                                  registry=r)
        self.calendars_scheduled = 0
        self.started = time.monotonic()
        self.last_pass: float | None = None  # monotonic time of this process's last success
        self.default_interval = default_interval or (lambda: 300)
        if owners is not None:  # a calendar's interval: run passes intervals.interval_of
            per_calendar = interval or (lambda row: float(row.interval or self.default_interval()))
            r.register(_StoreCollector(owners, per_calendar, hash_calendar_ids,
                                       fleet_cache_seconds))

    def record_pass(self, result: PassOutcome) -> None:
        """Count one successful pass and the changes it applied."""
        self.syncs.labels(result.mode).inc()
        self.last_pass = time.monotonic()
        self.duration.observe(result.seconds)
        if result.bad_events:
            self.bad_events.inc(result.bad_events)
        for kind, count in result.counts.changes.items():
            if count:
                self.events.labels(kind).inc(count)

    def record_audit(self, result: PassOutcome) -> None:
        """Count an audit and what it had to repair (its own created/updated/deleted)."""
        self.audits.inc()
        for kind, count in result.counts.changes.items():
            if count:
                self.drift.labels(kind).inc(count)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return bytes(generate_latest(self.registry))


def calendar_label(calendar_id: str, hashed: bool) -> str:
    """The ``calendar`` label: the id, or (``[metrics] hash_calendar_ids``) a stable
    pseudonym, so scrapes do not carry people's e-mail addresses. Pseudonymous,
    not anonymous: whoever knows an id can compute its label."""
    if not hashed:
        return calendar_id
    return "sha256:" + hashlib.sha256(calendar_id.encode("utf-8")).hexdigest()[:16]



class _StoreCollector(Collector):
    """Lag per calendar and leases held, read from the database at most every
    ``cache_seconds`` (a scrape between two refreshes is served from memory, so
    scraping often cannot make the database read every calendar row each time)."""

    def __init__(self, owners: Callable[[], list[str]], interval: Callable[[Any], float],
                 hash_calendar_ids: Callable[[], bool], cache_seconds: float) -> None:
        self._owners = owners
        self._interval = interval
        self._hash = hash_calendar_ids
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:  # concurrent scrapes share one refresh
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._cache_seconds:
                families = self._read()
                if families is None:
                    return
                self._cached = (now, families)
            families = self._cached[1]
        yield from families

    def _read(self) -> list[GaugeMetricFamily] | None:
        lag = GaugeMetricFamily("reconciler_calendar_lag_seconds",
                                "Seconds a calendar is behind its interval (0 on schedule).",
                                labels=["calendar", "account"])
        every = GaugeMetricFamily("reconciler_calendar_interval_seconds",
                                  "Seconds between polls of a calendar (adaptive: its plan).",
                                  labels=["calendar", "account"])
        rate = GaugeMetricFamily("reconciler_calendar_changes_per_hour",
                                 "Estimated changes per hour (what the adaptive schedule learned).",
                                 labels=["calendar", "account"])
        leases = GaugeMetricFamily("reconciler_leases_held",
                                   "Calendar leases this process holds now.")
        failing = GaugeMetricFamily("reconciler_calendars_failing",
                                    "Calendars whose last pass failed.")
        try:
            now = utcnow()
            owners = self._owners()
            hashed = self._hash()
            held = 0
            failing_count = 0
            for row in fleet.calendar_lags(self._interval, now):
                if row.lease_owner in owners:
                    held += 1
                if row.failing:
                    failing_count += 1
                label = [calendar_label(row.calendar_id, hashed), row.account]
                every.add_metric(label, row.interval_s)
                rate.add_metric(label, row.changes_per_hour)
                if row.lag_s is not None:
                    lag.add_metric([calendar_label(row.calendar_id, hashed), row.account],
                                   row.lag_s)
            leases.add_metric([], held)
            failing.add_metric([], failing_count)
        except Exception as exc:  # a scrape must not fail because the database blinked
            log.warning("metrics: could not read calendar state: %s", exc)
            return None
        return [lag, every, rate, leases, failing]


@dataclass(slots=True)
class _Probe:
    ok: bool
    problem: str = ""
    newest_success: dt.datetime | None = None
    longest_interval: float | None = None


class DatabaseProbe:
    """Asks the database one cheap question from a thread of its own, with a deadline.

    The question (newest ``last_success``, longest interval) is both the
    reachability check and the input of the staleness rule. One probe runs at
    a time; a caller that finds it still running after ``timeout`` seconds
    gets "not answering" instead of waiting for the driver's own time-outs.
    """

    def __init__(self, timeout: float = PROBE_TIMEOUT,
                 on_lost: Callable[[BaseException], None] | None = None) -> None:
        self.timeout = timeout
        self._on_lost = on_lost  # ``run``'s one line per cause for a lost database
        self._cond = threading.Condition()
        self._wanted = 0
        self._done = 0
        self._result: _Probe | None = None
        self._closed = False
        self._logged: str | None = None  # the last failure logged (the probe thread's own)
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)
        self._thread.start()

    def check(self) -> _Probe:
        """A fresh probe result, or "not answering" when none arrives in time."""
        with self._cond:
            self._wanted += 1
            ticket = self._wanted
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._done >= ticket or self._closed,
                                timeout=self.timeout)
            if self._done >= ticket and self._result is not None:
                return self._result
        return _Probe(False,
                      f"database: not answering within {self.timeout:.0f}s")

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted > self._done or self._closed)
                if self._closed:
                    break
                target = self._wanted
            result = self._ask()
            with self._cond:
                self._result = result
                self._done = target
                self._cond.notify_all()
        close_thread_connection()

    def _ask(self) -> _Probe:
        try:
            newest, longest = fleet.newest_success()
        except Exception as exc:
            close_thread_connection()  # reconnect from scratch next time
            # The driver's text names hosts and users: the log gets it, the body does not.
            detail = first_line(exc)
            if self._on_lost is not None and isinstance(exc, DatabaseUnavailable):
                self._on_lost(exc)  # the same outage the passes report: one line for both
            elif detail != self._logged:  # one line per cause, not one per health check
                log.warning("healthz: the database did not answer: %s", detail)
                self._logged = detail
            return _Probe(False, "database unavailable")
        self._logged = None
        return _Probe(True, newest_success=newest, longest_interval=longest)

    def close(self) -> None:
        """Stop the probe thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=self.timeout)


def stale_problem(metrics: Metrics, probe: _Probe, now: dt.datetime,
                  monotonic: float) -> str | None:
    """Why no pass counts as recent (None when one does): the staleness rule of ``/healthz``."""
    interval = max(metrics.default_interval(), probe.longest_interval or 0)
    limit = STALE_INTERVALS * interval
    if monotonic - metrics.started < limit:
        return None  # start-up grace
    if metrics.last_pass is not None and monotonic - metrics.last_pass < limit:
        return None
    if probe.newest_success is not None and (now - probe.newest_success).total_seconds() < limit:
        return None
    return f"no pass has succeeded for {limit:g}s ({STALE_INTERVALS} intervals)"


class HealthServer:
    """``GET /healthz`` (200 ok / 503 with the reason) and ``GET /metrics`` on host:port.

    Served by waitress (as the watch receiver is): connections are read
    asynchronously, so idle or slow clients hold no thread; at most
    :data:`HTTP_THREADS` requests run at once, :data:`CONNECTION_LIMIT`
    connections stay open, and an idle one is closed after the receiver's
    ``CHANNEL_TIMEOUT`` seconds.
    """

    def __init__(self, host: str, port: int, metrics: Metrics,
                 health: Callable[[], tuple[bool, dict[str, Any]]],
                 on_database_lost: Callable[[BaseException], None] | None = None) -> None:
        from reconciler.watch.server import ReceiverServer

        self.probe = DatabaseProbe(on_lost=on_database_lost)
        app = _make_app(metrics, _combined_health(metrics, self.probe, health))
        try:
            self.server = ReceiverServer(app, host, port, threads=HTTP_THREADS,
                                         what="metrics.port", name="metrics-http",
                                         limit=CONNECTION_LIMIT)
        except ConfigError as exc:
            self.probe.close()
            cause = exc.__cause__
            raise (cause if isinstance(cause, OSError) else OSError(str(exc))) from None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.server.port

    def start(self) -> None:
        """Serve in a daemon thread."""
        self.server.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.stop()
        self.probe.close()


def _combined_health(metrics: Metrics, probe: DatabaseProbe,
                     health: Callable[[], tuple[bool, dict[str, Any]]]
                     ) -> Callable[[], tuple[bool, dict[str, Any]]]:
    def combined() -> tuple[bool, dict[str, Any]]:
        found = probe.check()
        if not found.ok:
            return False, {"problem": found.problem}
        ok, detail = health()
        if ok and detail.get("calendars", 1):
            problem = stale_problem(metrics, found, utcnow(), time.monotonic())
            if problem is not None:
                ok, detail = False, {**detail, "problem": problem}
        return ok, detail

    return combined


def _make_app(metrics: Metrics, health: Callable[[], tuple[bool, dict[str, Any]]]
              ) -> Callable[..., list[bytes]]:
    """The WSGI app of ``/metrics`` and ``/healthz``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            status, body, content_type = _answer(environ)
        except Exception as exc:  # a bug: one line, a 500, no traceback to the client
            log.error("metrics http: %s: %s", type(exc).__name__, first_line(exc))
            status, body, content_type = "500 Internal Server Error", b"internal error\n", (
                "text/plain")
        finally:
            close_thread_connection()  # scrapes leave no database connection behind
        start_response(status, [("Content-Type", content_type),
                                ("Content-Length", str(len(body)))])
        return [body]

    def _answer(environ: dict[str, Any]) -> tuple[str, bytes, str]:
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD"):
            return "405 Method Not Allowed", b"use GET\n", "text/plain"
        if path == "/metrics":
            return "200 OK", metrics.render(), CONTENT_TYPE_LATEST
        if path == "/healthz":
            ok, detail = health()
            body = json.dumps({"status": "ok" if ok else "unhealthy", **detail}, default=str)
            return ("200 OK" if ok else "503 Service Unavailable", body.encode() + b"\n",
                    "application/json")
        return "404 Not Found", b"not found: try /healthz or /metrics\n", "text/plain"

    return app

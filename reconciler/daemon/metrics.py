"""Prometheus metrics and the ``/healthz`` + ``/metrics`` HTTP endpoint, in one place.

Counters are updated by the scheduler as things happen; per-calendar lag and
the leases this process holds are read from the database at scrape time, so
they are right even for calendars another process syncs. A private registry
keeps several daemons in one test process apart.

``/healthz`` answers 503 while the database is unreachable or not answering
(probed by one thread of its own, with a deadline, so a frozen server makes
the answer 503 rather than hang), or when no pass has succeeded in any process
for :data:`STALE_INTERVALS` intervals (the newest ``last_success`` of the
mirror, and this process's own passes), past a start-up grace of as long.
Each HTTP request runs in a thread of its own; its database connection is
closed when the request ends, so scrapes leave no connection behind.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from reconciler.clock import utcnow
from reconciler.errors import first_line
from reconciler.outcome import PassOutcome
from reconciler.store import close_thread_connection
from reconciler.store.models import Calendar, fn

log = logging.getLogger("reconciler.daemon.metrics")

STALE_INTERVALS = 3  # no successful pass for this many intervals: unhealthy
PROBE_TIMEOUT = 3.0  # seconds /healthz waits for the database to answer


class Metrics:
    """Every metric ``reconciler run`` exports."""

    def __init__(self, owners: Callable[[], list[str]] | None = None,
                 default_interval: Callable[[], int] | None = None,
                 interval: Callable[[Any], float] | None = None) -> None:
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
        if owners is not None and interval is not None:  # interval: intervals.interval_of
            r.register(_StoreCollector(owners, interval))

    def record_pass(self, result: PassOutcome) -> None:
        """Count one successful pass and the changes it applied."""
        self.syncs.labels(result.mode).inc()
        self.last_pass = time.monotonic()
        self.duration.observe(result.seconds)
        if result.bad_events:
            self.bad_events.inc(result.bad_events)
        for kind in ("created", "updated", "deleted"):
            count = getattr(result, kind)
            if count:
                self.events.labels(kind).inc(count)

    def record_audit(self, result: PassOutcome) -> None:
        """Count an audit and what it had to repair (its own created/updated/deleted)."""
        self.audits.inc()
        for kind in ("created", "updated", "deleted"):
            count = getattr(result, kind)
            if count:
                self.drift.labels(kind).inc(count)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return bytes(generate_latest(self.registry))


class _StoreCollector(Collector):
    """Lag per calendar and leases held, read from the database at scrape time."""

    def __init__(self, owners: Callable[[], list[str]], interval: Callable[[Any], float]) -> None:
        self._owners = owners
        self._interval = interval

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily("reconciler_calendar_lag_seconds",
                                "Seconds a calendar is behind its interval (0 on schedule).",
                                labels=["calendar", "account"])
        leases = GaugeMetricFamily("reconciler_leases_held",
                                   "Calendar leases this process holds now.")
        failing = GaugeMetricFamily("reconciler_calendars_failing",
                                    "Calendars whose last pass failed.")
        try:
            now = utcnow()
            owners = self._owners()
            held = 0
            failing_count = 0
            rows = Calendar.select(Calendar.calendar_id, Calendar.account, Calendar.last_success,
                                   Calendar.interval, Calendar.lease_owner,
                                   Calendar.consecutive_failures).where(~Calendar.removed)
            for row in rows:
                if row.lease_owner in owners:
                    held += 1
                if row.consecutive_failures:
                    failing_count += 1
                if row.last_success is not None:
                    behind = (now - row.last_success).total_seconds() - self._interval(row)
                    lag.add_metric([row.calendar_id, row.account], max(0.0, behind))
            leases.add_metric([], held)
            failing.add_metric([], failing_count)
        except Exception as exc:  # a scrape must not fail because the database blinked
            log.warning("metrics: could not read calendar state: %s", exc)
            return
        yield lag
        yield leases
        yield failing


@dataclass(slots=True)
class _Probe:
    ok: bool
    problem: str = ""
    newest_success: dt.datetime | None = None
    longest_interval: int | None = None


class DatabaseProbe:
    """Asks the database one cheap question from a thread of its own, with a deadline.

    The question (newest ``last_success``, longest interval) is both the
    reachability check and the input of the staleness rule. One probe runs at
    a time; a caller that finds it still running after ``timeout`` seconds
    gets "not answering" instead of waiting for the driver's own time-outs.
    """

    def __init__(self, timeout: float = PROBE_TIMEOUT) -> None:
        self.timeout = timeout
        self._cond = threading.Condition()
        self._wanted = 0
        self._done = 0
        self._result: _Probe | None = None
        self._closed = False
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

    @staticmethod
    def _ask() -> _Probe:
        try:
            row = (Calendar.select(fn.MAX(Calendar.last_success),
                                   fn.MAX(Calendar.interval))
                   .where(~Calendar.removed).tuples().first())
        except Exception as exc:
            close_thread_connection()  # reconnect from scratch next time
            return _Probe(False, f"database: {first_line(exc)}")
        newest, longest = row if row is not None else (None, None)
        if isinstance(newest, str):  # SQLite without type conversion
            newest = dt.datetime.fromisoformat(newest)
        return _Probe(True, newest_success=newest,
                      longest_interval=int(longest) if longest else None)

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
    return f"no pass has succeeded for {limit}s ({STALE_INTERVALS} intervals)"


class HealthServer:
    """``GET /healthz`` (200 ok / 503 with the reason) and ``GET /metrics`` on host:port."""

    def __init__(self, host: str, port: int, metrics: Metrics,
                 health: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        self.probe = DatabaseProbe()
        handler = _make_handler(metrics, _combined_health(metrics, self.probe, health))
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics-http",
                                       daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
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


def _make_handler(metrics: Metrics,
                  health: Callable[[], tuple[bool, dict[str, Any]]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                self._get()
            finally:
                close_thread_connection()  # this thread ends with the request

        def _get(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, detail = health()
                body = json.dumps({"status": "ok" if ok else "unhealthy", **detail}, default=str)
                self._send(200 if ok else 503, body.encode() + b"\n", "application/json")
            else:
                self._send(404, b"not found: try /healthz or /metrics\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler

"""Prometheus metrics and the ``/healthz`` + ``/metrics`` HTTP endpoint, in one place.

Counters are updated by the scheduler as things happen; per-calendar lag and
the leases this process holds are read from the database at scrape time, so
they are right even for calendars another process syncs. A private registry
keeps several daemons in one test process apart.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from reconciler.clock import utcnow
from reconciler.outcome import PassOutcome
from reconciler.store.models import Calendar

log = logging.getLogger("reconciler.daemon.metrics")


class Metrics:
    """Every metric ``reconciler run`` exports."""

    def __init__(self, owners: Callable[[], list[str]] | None = None,
                 default_interval: Callable[[], int] | None = None) -> None:
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
        self.sync_requests = Counter("reconciler_sync_soon_passes",
                                     "Passes run because of a 'sync soon' request.", registry=r)
        self.duration = Histogram("reconciler_sync_duration_seconds", "Duration of one pass.",
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                                  registry=r)
        self.calendars_scheduled = 0
        if owners is not None:
            r.register(_StoreCollector(owners, default_interval or (lambda: 300)))

    def record_pass(self, result: PassOutcome) -> None:
        """Count one successful pass and the changes it applied."""
        self.syncs.labels(result.mode).inc()
        self.duration.observe(result.seconds)
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

    def __init__(self, owners: Callable[[], list[str]], default_interval: Callable[[], int]) -> None:
        self._owners = owners
        self._default_interval = default_interval

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
            default = self._default_interval()
            rows = Calendar.select(Calendar.calendar_id, Calendar.account, Calendar.last_success,
                                   Calendar.interval, Calendar.lease_owner,
                                   Calendar.consecutive_failures).where(~Calendar.removed)
            for row in rows:
                if row.lease_owner in owners:
                    held += 1
                if row.consecutive_failures:
                    failing_count += 1
                if row.last_success is not None:
                    behind = (now - row.last_success).total_seconds() - (row.interval or default)
                    lag.add_metric([row.calendar_id, row.account], max(0.0, behind))
            leases.add_metric([], held)
            failing.add_metric([], failing_count)
        except Exception as exc:  # a scrape must not fail because the database blinked
            log.warning("metrics: could not read calendar state: %s", exc)
            return
        yield lag
        yield leases
        yield failing


class HealthServer:
    """``GET /healthz`` (200 ok / 503 with the reason) and ``GET /metrics`` on host:port."""

    def __init__(self, host: str, port: int, metrics: Metrics,
                 health: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        handler = _make_handler(metrics, health)
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


def _make_handler(metrics: Metrics,
                  health: Callable[[], tuple[bool, dict[str, Any]]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
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

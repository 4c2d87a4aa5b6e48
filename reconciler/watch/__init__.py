"""Watch mode: Google push notifications as a hint to poll sooner, never as truth.

A notification only says "this calendar changed"; the receiver turns a valid
one into ``calendar.sync_requested_at`` and the poller does the real work, so a
lost, forged or replayed notification can cost latency but never correctness.

Modules: ``tokens`` (channel ids and HMAC tokens), ``channels`` (the channel
table), ``throttle`` (per-calendar coalescing of hints), ``receiver`` (the WSGI
app, :func:`make_app`), ``server`` (waitress in a thread), ``manager`` (open,
renew, stop channels), ``runtime`` (what ``reconciler run`` drives), ``cli``.
"""

from __future__ import annotations

from reconciler.watch.receiver import make_app

__all__ = ["make_app"]

"""``reconciler run``: the long-lived service that keeps polling every calendar.

One APScheduler job per calendar, a shared schedule in the database
(``calendar.next_due``) so several processes can split the work through the
leases, per-calendar backoff, a client-side quota budget, "sync soon"
requests, audits, reload on SIGHUP, metrics and a clean shutdown.
"""

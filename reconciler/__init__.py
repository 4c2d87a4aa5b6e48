"""calendar-reconciler: keep a SQL database an exact mirror of Google Calendar events.

It polls the Calendar v3 API (push notifications are only a hint to poll
sooner), reconciles every event version with a pure rule, and records exactly
which events changed in an append-only change feed.
"""

__version__ = "0.1.0"

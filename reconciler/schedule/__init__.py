"""The adaptive schedule (``[sync] schedule = "adaptive"``): pure decisions, no I/O.

* :mod:`~reconciler.schedule.estimate`: how often a calendar changes, learned
  from what its passes find, forgetting old behaviour with a half-life.
* :mod:`~reconciler.schedule.allocate`: estimates and a request budget in,
  one interval per calendar out (a power rule near the square root, bounded).
* :mod:`~reconciler.schedule.spread`: when a calendar's next poll is due, on
  a per-calendar phase grid so the fleet does not poll in lockstep.

The daemon reads and writes the numbers through ``reconciler.store.schedule``;
nothing here touches a database, a clock or the network (see docs/schedule.md).
"""

"""Freshness in simulation: the adaptive schedule's own pure functions on the benchmark's trace.

``bench/freshness.py`` measures the real ``run`` against emulators (about
5.5 minutes a run, one trace). This script replays the same trace through
the same decisions (:mod:`reconciler.schedule`: the estimator, the
replanning, the phase grid, and ``daemon.planning.next_after_pass``) in simulated
time, with the daemon's replanning period, one request's latency and the
quota's token bucket, in a second. It is for what one measured run cannot
show: many seeds, where staleness comes from (busy or quiet calendars, which
minute of the trace), and the effect of a change to the estimator before
spending a measured run on it. Every figure the issue asks for still comes
from ``bench/freshness.py``; the two should agree within a run's noise
(the table printed here has the measured benchmark's columns).

    .venv/bin/python bench/freshness_sim.py                      # the issue's setup, 5 seeds
    .venv/bin/python bench/freshness_sim.py --quiet-zipf 0 --seeds 10
    .venv/bin/python bench/freshness_sim.py --history 0   # a cold start
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field

from freshness import Edit, Setup, calendar_ids, history, pct, theory, trace, true_rates

from reconciler.daemon.planning import next_after_pass
from reconciler.intervals import Grid
from reconciler.schedule import plan as adaptive_plan
from reconciler.schedule.estimate import LISTING_WINDOW, Estimate, from_listing, observe
from reconciler.schedule.spread import phase

EPOCH = dt.datetime(2026, 12, 7, 12, 0, 0)
LATENCY = 0.1  # one events.list page
SHOW = 0.15  # from a poll's start until its changes are in the mirror (request + commit)


def first_done(setup: Setup) -> float:
    """When the first passes have all finished (the benchmark starts its edits then):
    the quota's bucket (10 s worth) lets the first ones go at once, the rest at its rate."""
    rate = setup.budget / 60.0
    queued = max(0.0, setup.calendars - rate * 10 - rate * 0.1 * setup.interval)
    return 0.1 * setup.interval + queued / rate + 1.0


@dataclass
class Cal:
    """One calendar in the simulation."""

    cid: str
    rate: float
    busy: bool
    grid: Grid
    estimate: Estimate = field(default_factory=Estimate)
    planned: float | None = None
    last_poll: float | None = None
    last_started: float | None = None
    last_interval: float = 0.0
    due: float = 0.0
    pending: list[Edit] = field(default_factory=list)


def at(seconds: float) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=seconds)


def since(when: dt.datetime) -> float:
    return (when - EPOCH).total_seconds()


def first_estimate(ages: list[float], events: int) -> Estimate:
    """What the first listing tells (``estimate.from_listing``) of a calendar whose
    events were last changed ``ages`` seconds ago."""
    recent = len({math.floor(a) for a in ages if a < LISTING_WINDOW})
    return from_listing(recent, events) or Estimate()


def simulate(setup: Setup, edits: list[Edit], adaptive: bool,
             replan_every: float) -> tuple[list[tuple[Edit, float]], list[float]]:
    """(edit, staleness) for every edit and the start time of every poll."""
    rates = {c: r for c, r in zip(calendar_ids(setup), _rates(setup), strict=True)}
    cals = {cid: Cal(cid, rate, n < setup.busy, Grid(phase(cid), setup.max_interval))
            for n, (cid, rate) in enumerate(rates.items())}
    pks = {cid: n for n, cid in enumerate(cals)}
    rng = random.Random(setup.seed)
    past = history(setup)
    queue: list[tuple[float, int, str]] = []
    for cid in cals:
        heapq.heappush(queue, (rng.uniform(0, 0.1 * setup.interval), 0, cid))
    edit_at = [(first_done(setup) + e.at, e) for e in edits]
    next_edit = 0
    end = first_done(setup) + setup.minutes * 60 + setup.max_interval + 10
    tokens, stamp, rate = setup.budget / 6.0, 0.0, setup.budget / 60.0
    stale: list[tuple[Edit, float]] = []
    polls: list[float] = []
    next_replan = replan_every
    version = Counter[str]()
    reserved: set[str] = set()
    while queue and queue[0][0] < end:
        when, ver, cid = heapq.heappop(queue)
        if ver != version[cid]:
            continue
        while adaptive and next_replan <= when:
            _replan(cals, pks, setup, next_replan, queue, version)
            next_replan += replan_every
        while next_edit < len(edit_at) and edit_at[next_edit][0] <= when:
            cals[edit_at[next_edit][1].calendar].pending.append(edit_at[next_edit][1])
            next_edit += 1
        # the quota: a token per request, the bucket holds 10 s worth (a reservation,
        # as daemon/quota.py: tokens may go negative, the caller waits off the debt)
        if cid in reserved:
            reserved.discard(cid)
        else:
            tokens = min(setup.budget / 6.0, tokens + (when - stamp) * rate) - 1.0
            stamp = when
            if tokens < 0.0:
                version[cid] += 1
                heapq.heappush(queue, (when - tokens / rate, version[cid], cid))
                reserved.add(cid)
                continue
        cal = cals[cid]
        polls.append(when)
        seen = [e for e in cal.pending]
        cal.pending.clear()
        for e in seen:
            stale.append((e, when + SHOW - (first_done(setup) + e.at)))
        if cal.last_poll is None:
            ages = [a + when for a in past[cid].values()]
            cal.estimate = first_estimate(ages, setup.events)
        if cal.last_poll is not None:
            changed = len({e.event for e in seen})
            cal.estimate = observe(cal.estimate, changed, when - cal.last_poll)
        cal.last_poll = when
        cal.last_started = when
        interval = adaptive_plan.chosen_interval(setup.interval, cal.planned, adaptive)
        cal.last_interval = interval
        due = next_after_pass(at(when), interval, at(when + LATENCY),
                              cal.grid if adaptive else None)
        cal.due = since(due)
        version[cid] += 1
        heapq.heappush(queue, (cal.due, version[cid], cid))
    return stale, polls


def _rates(setup: Setup) -> list[float]:
    return list(true_rates(setup).values())


def _replan(cals: dict[str, Cal], pks: dict[str, int], setup: Setup, now: float,
            queue: list[tuple[float, int, str]], version: Counter[str]) -> None:
    rows = [(pks[c.cid], c.estimate.rate, c.estimate.weight) for c in cals.values()]
    plan = adaptive_plan.replan(rows, interval=setup.interval,
                                requests_per_minute=setup.budget,
                                bounds=(min(2, setup.interval), setup.max_interval))
    for cal in cals.values():
        cal.planned = plan[pks[cal.cid]]
        if cal.last_started is None:
            continue
        interval = cal.planned or float(setup.interval)
        if interval == cal.last_interval:
            continue
        cal.last_interval = interval
        moved = since(next_after_pass(at(cal.last_started), interval, at(now), cal.grid))
        if abs(moved - cal.due) > 0.5:
            cal.due = moved
            version[cal.cid] += 1
            heapq.heappush(queue, (moved, version[cal.cid], cal.cid))


def summary(values: list[float]) -> tuple[float, float, float, float]:
    return pct(values, 0.5), pct(values, 0.95), statistics.fmean(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--quiet-zipf", type=float, default=0.8)
    parser.add_argument("--history", type=float, default=7200.0, metavar="SECONDS",
                        help="the same edits for this long before the run (0: a cold start)")
    args = parser.parse_args()
    print("| seed | schedule | p50 | p95 | mean | max | req/min | busiest second | busy p50 | "
          "quiet p50 | 1st min p50 | later p50 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for seed in range(18, 18 + args.seeds):
        setup = Setup(minutes=args.minutes, seed=seed, quiet_zipf=args.quiet_zipf,
                      history=args.history)
        rng = random.Random(setup.seed)
        edits = trace(setup, rng)
        busy = set(calendar_ids(setup)[:setup.busy])
        for label, adaptive in (("fixed", False), ("adaptive", True)):
            stale, polls = simulate(setup, edits, adaptive, max(1.0, setup.interval / 4))
            values = [s for _, s in stale]
            window = [p for p in polls if first_done(setup) <= p < first_done(setup) + setup.minutes * 60]
            b = [s for e, s in stale if e.calendar in busy]
            q = [s for e, s in stale if e.calendar not in busy]
            first = [s for e, s in stale if e.at < 60]
            later = [s for e, s in stale if e.at >= 60]
            p50, p95, mean, top = summary(values)
            seconds = Counter(int(p - first_done(setup)) for p in window)
            busiest = max(seconds.values(), default=0) / (len(window) / (setup.minutes * 60))
            print(f"| {seed} | {label} | {p50:.2f} | {p95:.2f} | {mean:.2f} | {top:.2f} | "
                  f"{len(window) / setup.minutes:.0f} | {busiest:.1f}x (at "
                  f"{max(seconds, key=lambda k: seconds[k], default=0)} s) | "
                  f"{pct(b, .5):.2f} | {pct(q, .5):.2f} | "
                  f"{pct(first, .5):.2f} | {pct(later, .5):.2f} |")
        _, oracle = theory(setup, edits, rng)
        p50, p95, mean, top = summary(oracle)
        print(f"| {seed} | oracle | {p50:.2f} | {p95:.2f} | {mean:.2f} | {top:.2f} | - | - | "
              "- | - | - | - |")


if __name__ == "__main__":
    main()

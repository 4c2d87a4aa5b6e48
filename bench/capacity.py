"""Capacity: how many calendars processes keep fresh, and where MariaDB becomes the limit.

``python bench/capacity.py [--calendars 1600] [--accounts 8] [--processes 1,2,4]``

1. MariaDB cost of a no-change poll: the project in this process
   (``reconciler.service.Service``, concurrency 32, zero latency, so the
   database and the client's CPU are all that is left) polls every calendar
   of a synced fleet once; SQL statements are counted client-side
   (``Database.execute_sql``), MariaDB's CPU from its process (``psutil``;
   the server is shared, so that figure is an upper bound).
2. N processes on one MariaDB: the fleet split by account over N
   ``reconciler once`` processes (tuned: concurrency 32, Google's quotas),
   all started together against the latency emulator, all on one database;
   aggregate polls/s of a no-change pass, start-up included.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fleet as fl
from run import Databases, Emu, verify

PYTHON = sys.executable


def mariadb_cpu() -> float:
    """CPU seconds the MariaDB server has used so far (0 when it cannot be read)."""
    import psutil

    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("mariadbd", "mysqld"):
            try:
                times = proc.cpu_times()
                return float(times.user + times.system)
            except psutil.Error:
                return 0.0
    return 0.0


def statement_cost(calendars: int, dbs: Databases, out: list[str]) -> None:
    """Table C1: statements per no-change poll on MariaDB, and what they cost the server."""
    from contend import Project

    emu = Emu()
    try:
        cals = [f"cap{n:05d}@group.calendar.google.com" for n in range(calendars)]
        emu.call("seed", calendars=cals, events=2)
        project = Project({"emu": emu.host, "db": dbs.new("mysql"), "calendars": cals,
                           "concurrency": fl.WIDTH})
        project.sync()  # first sync, untimed
        emu.call("requests")
        rows: list[tuple[str, float, float, float, int]] = []
        for label in ("no-change pass 1", "no-change pass 2"):
            s0, cpu0, t0 = project.statements, mariadb_cpu(), time.perf_counter()
            project.sync()
            seconds = time.perf_counter() - t0
            rows.append((label, seconds, project.statements - s0, mariadb_cpu() - cpu0,
                         emu.call("requests")["total"]))
        problem = verify(emu.truth(cals), project.mirror(), etags=True)
        project.close()
    finally:
        emu.close()
        dbs.drop_all()
    out.append(f"### C1. MariaDB: a no-change poll of {calendars:,} calendars, one process, "
               f"concurrency {fl.WIDTH}, zero latency\n")
    out.append("| pass | seconds | polls/s | API requests | SQL statements | statements / poll "
               "| statements/s | MariaDB CPU s | MariaDB CPU us / statement | correct |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, seconds, statements, cpu, requests in rows:
        out.append(f"| {label} | {seconds:.2f} | {calendars / seconds:,.0f} | {requests} | "
                   f"{statements:,.0f} | {statements / calendars:.2f} | "
                   f"{statements / seconds:,.0f} | {cpu:.2f} | "
                   f"{1e6 * cpu / max(statements, 1):.0f} | {'yes' if problem is None else 'NO'} |")
    out.append("")


def processes(calendars: int, accounts: int, counts: list[int], latency: fl.Latency,
              dbs: Databases, out: list[str]) -> None:
    """Table C2: N ``reconciler once`` processes, disjoint shards, one MariaDB database."""
    fleet = fl.make_fleet(calendars, accounts, prefix="cap")
    by_user: dict[str, list[str]] = {}
    for user, cal in fleet:
        by_user.setdefault(user, []).append(cal)
    users = list(by_user)
    rows: list[tuple[int, float, float, int, int, bool]] = []
    for count in counts:
        emu = Emu()
        try:
            for user, owned in by_user.items():
                emu.call("seed", calendars=owned, events=2, owner=user)
            db = dbs.new("mysql")
            work = Path(tempfile.mkdtemp(prefix="bench-cap-"))
            env = {**os.environ, "GOOGLE_CALENDAR_EMULATOR_HOST": emu.host}
            env.pop("RECONCILER_DATABASE_URL", None)
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages run from cached bytecode
            commands = []
            for k in range(count):
                shard = [(u, c) for u, c in fleet if users.index(u) % count == k]
                path = work / f"p{k}.toml"
                path.write_text(fl.project_config(shard, db, tuned=True), encoding="utf-8")
                commands.append([PYTHON, "-m", "reconciler.cli", "-c", str(path), "once"])

            def run_all(cmds: list[list[str]] = commands, env: dict[str, Any] = env,
                        work: Path = work) -> float:
                t0 = time.perf_counter()
                # stderr to files, not pipes: a full pipe would stall a process while
                # the parent waits on another one, and serialise them.
                logs = [work / f"p{k}.log" for k in range(len(cmds))]
                procs = []
                for cmd, log in zip(cmds, logs, strict=True):
                    with log.open("w") as sink:
                        procs.append(subprocess.Popen(cmd, env=env, cwd=work,
                                                      stdout=subprocess.DEVNULL, stderr=sink))
                for proc, log in zip(procs, logs, strict=True):
                    if proc.wait(timeout=3600) != 0:
                        raise SystemExit(f"bench: reconciler once failed: "
                                         f"{log.read_text().strip()[-400:]}")
                return time.perf_counter() - t0

            run_all()  # first sync, zero latency, untimed
            emu.call("set_latency", fixed_ms=latency.fixed_ms, per_item_ms=latency.per_item_ms,
                     jitter_ms=latency.jitter_ms)
            emu.call("requests")
            cpu0 = mariadb_cpu()
            seconds = run_all()
            cpu = mariadb_cpu() - cpu0
            got = emu.call("requests")
            ok = verify(emu.truth([c for _, c in fleet]), fl.mirror_of_store(db), True) is None
            rows.append((count, seconds, cpu, got["total"], got["max_in_flight"], ok))
        finally:
            emu.close()
            dbs.drop_all()
    out.append(f"### C2. N `reconciler once` processes on one MariaDB: no-change pass of "
               f"{calendars:,} calendars over {accounts} accounts (split by account), "
               f"latency {latency.label()}, concurrency {fl.WIDTH} each, start-up included\n")
    out.append("| processes | seconds | polls/s | vs 1 process | API requests | peak in flight "
               "| MariaDB CPU s | correct |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---|")
    base = rows[0][1] if rows else 1.0
    for count, seconds, cpu, requests, peak, ok in rows:
        out.append(f"| {count} | {seconds:.2f} | {calendars / seconds:,.0f} | "
                   f"{base / seconds:.2f}x | {requests} | {peak} | {cpu:.2f} | "
                   f"{'yes' if ok else 'NO'} |")
    out.append("")


def main() -> None:
    """Run both measurements and print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calendars", type=int, default=1600)
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    args = parser.parse_args()
    dbs = Databases(use_mysql=True)
    out: list[str] = []
    try:
        statement_cost(args.calendars, dbs, out)
        processes(args.calendars, args.accounts, [int(x) for x in args.processes.split(",")],
                  fl.Latency(args.latency_ms), dbs, out)
    finally:
        dbs.drop_all()
    print("\n".join(out))


if __name__ == "__main__":
    main()

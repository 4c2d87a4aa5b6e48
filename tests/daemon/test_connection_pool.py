"""Connections follow ``[database] pool_size``, not ``[sync] concurrency`` (issue 17).

Three ``reconciler run`` processes with the default pool and concurrency (4 and
32) poll one PostgreSQL database as a role whose ``CONNECTION LIMIT`` is what
docs/database.md says they need (3 x 4) plus one each for an ``export`` and a
``status`` run while they work. Before the pool, one ``run`` held about 35
connections. The server refuses any connection over the limit ("too many
connections for role"), so the limit, not the server's ``max_connections``,
is what the test depends on; pg_stat_activity, sampled while they run,
shows each process's own count (by ``application_name``) staying within
``pool_size``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reconciler.emulator import Emulator
from tests.daemon.support import write_daemon_config
from tests.helpers import REPO, timed, wait_for

POOL_SIZE = 4  # the default of [database] pool_size
RUNS = 3
READERS = 2  # export and status
CALENDARS = 40


def _cli(emu: Emulator, config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "reconciler.cli", "-c", str(config), *args]


def _env(emu: Emulator) -> dict[str, str]:
    env = dict(os.environ, GOOGLE_CALENDAR_EMULATOR_HOST=emu.host)
    env.pop("RECONCILER_DATABASE_URL", None)
    return env


@pytest.mark.slow
@pytest.mark.postgres
def test_three_runs_and_readers_fit_the_documented_connection_count(
        calendar_emulator: Emulator, postgres_url: str, tmp_path: Path) -> None:
    from playhouse.db_url import connect

    emu = calendar_emulator
    ids = [f"pool-{i:02d}@group.calendar.google.com" for i in range(CALENDARS)]
    for i, cid in enumerate(ids):
        emu.add_calendar(cid)
        emu.insert_event(cid, timed(f"seed {i}", hour=i % 20))
    dbname = urlsplit(postgres_url).path.lstrip("/")
    role = f"reconciler_pool_{secrets.token_hex(3)}"
    limit = RUNS * POOL_SIZE + READERS
    admin = connect(postgres_url)
    admin.connect()
    admin.connection().autocommit = True
    admin.execute_sql(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {limit}")
    admin.execute_sql(f"ALTER DATABASE {dbname} OWNER TO {role}")
    parts = urlsplit(postgres_url)
    role_url = f"postgresql://{role}@{parts.hostname}:{parts.port or 5432}/{dbname}"

    def config_for(name: str) -> Path:
        # application_name (a libpq option in the URL) tells the processes apart.
        return write_daemon_config(
            tmp_path, f"{role_url}?application_name={name}",
            [{"name": "ops", "calendars": ids}],
            {"sync": {"interval": 2}, "quota": {"requests_per_minute": 1_000_000,
                                                 "per_user_requests_per_minute": 1_000_000}},
            name=f"{name}.toml")

    peak: Counter[str] = Counter()
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.05):
            rows = admin.execute_sql(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND usename = %s GROUP BY 1", (dbname, role)).fetchall()
            for name, count in rows:
                peak[name] = max(peak[name], int(count))

    def passes() -> int:
        row = admin.execute_sql(
            "SELECT count(*) FROM calendar WHERE last_success IS NOT NULL").fetchone()
        return int(row[0])

    logs = [tmp_path / f"run{i}.log" for i in range(RUNS)]
    procs: list[subprocess.Popen[bytes]] = []
    sampler = threading.Thread(target=sample, daemon=True)
    try:
        for i, log in enumerate(logs):
            with open(log, "wb") as sink:
                procs.append(subprocess.Popen(_cli(emu, config_for(f"run{i}"), "run"),
                                              env=_env(emu), cwd=REPO, stdout=sink,
                                              stderr=subprocess.STDOUT))
        wait_for(lambda: admin.table_exists("calendar"), 60, "the schema", step=0.2)
        sampler.start()
        wait_for(lambda: passes() == CALENDARS, 90, "every calendar synced once", step=0.2)
        seen = len(emu.request_log)
        # Readers while the three processes keep polling (interval 2 s).
        for name, args in (("export", ("export",)), ("status", ("status",))):
            done = subprocess.run(_cli(emu, config_for(name), *args), env=_env(emu), cwd=REPO,
                                  capture_output=True, timeout=120)
            assert done.returncode == 0, done.stderr.decode()
            assert b"too many" not in done.stderr
        wait_for(lambda: len(emu.request_log) >= seen + 2 * CALENDARS, 90,
                 "two more rounds of polls", step=0.2)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(30) == 0
    finally:
        sampling.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if sampler.is_alive():
            sampler.join(5)
        admin.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE usename = %s", (role,))
        admin.execute_sql(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
        admin.execute_sql(f"DROP OWNED BY {role}")
        admin.execute_sql(f"DROP ROLE IF EXISTS {role}")
        admin.close()

    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        assert "too many" not in text, text[-2000:]
        assert "no free database connection" not in text, text[-2000:]
    runs = {name: n for name, n in peak.items() if name.startswith("run")}
    print(f"peak connections per process: {dict(sorted(peak.items()))} (limit {limit})")
    assert len(runs) == RUNS
    assert all(n <= POOL_SIZE for n in runs.values()), runs

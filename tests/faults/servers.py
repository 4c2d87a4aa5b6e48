"""Private database servers for the fault suite: started, killed and restarted by a test.

A :class:`PrivateMariaDB` is a ``mariadbd`` of its own (data directory in a
temp dir, its own port, no grant checks), so a test can SIGKILL, SIGSTOP and
restart it without touching the shared server other tests use.
:class:`PrivatePostgres` does the same with ``initdb``/``postgres`` run as
the ``postgres`` user when the process is root. Waiting is always for an
event (the server answering, the process gone) with a deadline.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import wait_for


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(1.0)
            return bool(sock.recv(1))  # both servers greet (MariaDB) or accept (PG) at once
    except OSError:
        return False


class PrivateMariaDB:
    """A throw-away MariaDB server: :meth:`start`, :meth:`kill`, :meth:`freeze`, :meth:`thaw`."""

    def __init__(self, base: Path) -> None:
        self.datadir = base / "mariadb"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / "mariadb.log"

    @staticmethod
    def available() -> bool:
        """True when ``mariadb-install-db`` and ``mariadbd`` are installed."""
        return bool(shutil.which("mariadb-install-db")) and Path("/usr/sbin/mariadbd").exists()

    @property
    def url(self) -> str:
        """The server's URL for the ``reconciler`` database."""
        return f"mysql://root@127.0.0.1:{self.port}/reconciler"

    def install(self) -> None:
        """Create the data directory and the ``reconciler`` database."""
        self.datadir.mkdir(parents=True)
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                        "--auth-root-authentication-method=normal", "--skip-test-db", *user],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.start()
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE reconciler CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        conn.close()

    def start(self) -> None:
        """Start the server and wait until it answers."""
        user = ["--user=root"] if os.geteuid() == 0 else []
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.datadir}",
                 f"--socket={self.datadir}/sock", f"--port={self.port}",
                 "--bind-address=127.0.0.1", "--skip-grant-tables", "--innodb-buffer-pool-size=16M",
                 "--skip-log-bin", *user],
                stdout=log, stderr=log, start_new_session=True)
        wait_for(lambda: _answers(self.port) or self.proc.poll() is not None, 60, "mariadbd to start")
        if self.proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited {self.proc.returncode}; see {self.log}")

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown) and wait until it is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        wait_for(lambda: not _answers(self.port), 10, "the port to close")

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop for good (end of test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb into a temp dir), run as ``postgres`` when root."""

    def __init__(self, base: Path) -> None:
        # Its own directory under /tmp: the postgres user must reach it, and
        # pytest's tmp_path lives under a 0700 directory of the test's user.
        base = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        self.datadir = base / "pgdata"
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / "postgres.log"

    @staticmethod
    def bindir() -> Path | None:
        """The newest ``/usr/lib/postgresql/*/bin`` with ``initdb``, if any."""
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        return Path(found[-1]).parent if found else None

    @classmethod
    def available(cls) -> bool:
        """True when a cluster can be made here."""
        if cls.bindir() is None:
            return False
        if os.geteuid() == 0:
            return shutil.which("runuser") is not None and _has_user("postgres")
        return True

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    @property
    def url(self) -> str:
        """The cluster's URL for the ``reconciler`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/reconciler"

    def install(self) -> None:
        """initdb, start, create the ``reconciler`` database."""
        bindir = self.bindir()
        assert bindir is not None
        self.base.chmod(0o777)
        self.datadir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "postgres", "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        subprocess.run(self._as_owner([str(bindir / "initdb"), "-D", str(self.datadir), "-U",
                                       "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.start()
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE reconciler")
        conn.close()

    def start(self) -> None:
        """Start the postmaster in the foreground of its own session and wait for it."""
        bindir = self.bindir()
        assert bindir is not None
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self._as_owner([str(bindir / "postgres"), "-D", str(self.datadir), "-p",
                                str(self.port), "-c", "listen_addresses=127.0.0.1", "-c",
                                f"unix_socket_directories={self.datadir}", "-c", "fsync=off"]),
                stdout=log, stderr=log, start_new_session=True)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                return True
            try:
                import psycopg2

                psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                 dbname="postgres", connect_timeout=1).close()
                return True
            except Exception:
                return False

        wait_for(ready, 60, "postgres to start")
        if self.proc.poll() is not None:
            raise RuntimeError(f"postgres exited {self.proc.returncode}; see {self.log}")

    def kill(self) -> None:
        """SIGKILL the whole server process group and wait until the port is closed."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        wait_for(lambda: not _port_open(self.port), 10, "the port to close")
        for stale in [self.datadir / "postmaster.pid", *self.datadir.glob(".s.PGSQL.*")]:
            stale.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop for good (end of test)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        shutil.rmtree(self.base, ignore_errors=True)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False

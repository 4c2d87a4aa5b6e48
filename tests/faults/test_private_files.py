"""A SQLite mirror and its side files are private (0600) whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reconciler.store import open_store

pytestmark = pytest.mark.slow


def test_sqlite_database_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = open_store(f"sqlite:///{tmp_path}/mirror.db")
        db.execute_sql("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
        db.execute_sql("INSERT INTO probe VALUES (1)")
        assert os.umask(0o022) == 0o022  # the process umask is restored
        files = [tmp_path / "mirror.db", tmp_path / "mirror.db-wal", tmp_path / "mirror.db-shm"]
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        db.close()
    finally:
        os.umask(old)

"""The README's set-up and quick start, run verbatim as a newcomer would type them.

The quick start is the ``sh`` block after the ``<!-- quickstart`` marker. Each command
is its own process (``bash -c``, with the venv's ``bin`` first on ``PATH``, as after
``. .venv/bin/activate``), in an empty folder; a ``cat > FILE <<'EOF'`` command runs
with its lines up to ``EOF``. A command ending in ``&`` is started in the background
and waited for until it prints its first line (what a person sees before typing the
next command); ``kill %1`` stops that first background job. Pipelines run with
``pipefail``, so ``reconciler export | head -3`` must itself exit 0. The one change to
the text: the emulator's port 8085 becomes a free port, so parallel test runs do not
collide.

The slow test does it from a fresh clone: the README's two set-up commands in a clone of
the committed tree, then the quick start with that new venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

README = REPO / "README.md"
PORT = "8085"


def _block_after(text: str, marker: str) -> str:
    """The first fenced ``sh`` block after ``marker``."""
    rest = text.split(marker, 1)[1]
    return rest.split("```sh\n", 1)[1].split("```", 1)[0]


def commands(block: str) -> list[str]:
    """The block's commands: one per line, a here-document with its lines as one."""
    found: list[str] = []
    lines = block.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        here = re.search(r"<<'?(\w+)'?$", line)
        if here:
            end = lines.index(here.group(1), index + 1)
            found.append("\n".join(lines[index:end + 1]))
            index = end + 1
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            found.append(line)
        index += 1
    return found


def quickstart_commands() -> list[str]:
    return commands(_block_after(README.read_text(encoding="utf-8"), "<!-- quickstart"))


def setup_commands() -> list[str]:
    return commands(_block_after(README.read_text(encoding="utf-8"), "## Set up"))


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOOGLE_CALENDAR_EMULATOR_HOST", "RECONCILER_CONFIG",
                        "RECONCILER_DATABASE_URL", "VIRTUAL_ENV", "COLUMNS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def _check(command: str, result: subprocess.CompletedProcess[str], port: str) -> None:
    """What the README says each step shows."""
    out, err = result.stdout, result.stderr
    if command == "reconciler config check":
        assert "config reconciler.toml: ok (1 account, 0 configured calendars, 1 discovering)" in out
        assert (f"account me: ok (anonymous access to http://127.0.0.1:{port}/calendar/v3/)"
                in out.splitlines())
    elif command == "reconciler once":
        last = err.strip().splitlines()[-1]
        assert last.startswith("synced 3 calendars, 0 failed; 8 created, 0 updated, 0 deleted; "
                               "3 requests;"), err
    elif command == "reconciler status":
        assert out.startswith("3 calendars: 3 ok; oldest successful sync "), out
        assert "user@example.com" in out and "team@group.calendar.google.com" in out
    elif command.startswith("reconciler export |"):
        rows = [json.loads(line) for line in out.splitlines()]
        assert len(rows) == 3 and {r["account"] for r in rows} == {"me"}
        assert all(set(r) == {"account", "calendar", "status", "event"} for r in rows)
    elif command.startswith("reconciler changes |"):
        rows = [json.loads(line) for line in out.splitlines()]
        assert [r["id"] for r in rows] == [1, 2, 3] and {r["kind"] for r in rows} == {"created"}


def run_quickstart(bin_dir: Path, folder: Path) -> list[str]:
    """Run the quick start in ``folder``; return the commands run (each checked)."""
    port = _free_port()
    env = _env(bin_dir)
    background: list[subprocess.Popen[str]] = []
    done: list[str] = []
    try:
        for command in quickstart_commands():
            text = command.replace(PORT, port)
            if text.endswith("&"):
                proc = subprocess.Popen(["bash", "-c", "exec " + text[:-1].strip()], cwd=folder,
                                        env=env, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
                assert proc.stdout is not None
                first = proc.stdout.readline()  # the emulator says where it serves
                assert f"http://127.0.0.1:{port}/calendar/v3/" in first, (
                    first, proc.stderr.read() if proc.stderr else "")
                background.append(proc)
            elif text == "kill %1":
                background[0].terminate()
                assert background[0].wait(timeout=30) == 0  # the emulator stops cleanly
            else:
                result = subprocess.run(["bash", "-c", "set -o pipefail\n" + text], cwd=folder,
                                        env=env, text=True, capture_output=True, timeout=300)
                assert result.returncode == 0, (command, result.stdout, result.stderr)
                assert "Traceback" not in result.stderr
                _check(command, result, port)
            done.append(command)
    finally:
        for proc in background:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return done


def test_the_blocks_are_what_this_test_expects() -> None:
    """The parser sees the set-up and quick start as the README shows them."""
    assert setup_commands() == ["python3 -m venv .venv", ".venv/bin/pip install -e ."]
    quick = quickstart_commands()
    assert quick[0].startswith("reconciler emulator ") and quick[0].endswith("&")
    assert quick[1].startswith("cat > reconciler.toml <<'EOF'\n") and quick[1].endswith("\nEOF")
    assert {"reconciler config check", "reconciler once", "reconciler status",
            "kill %1"} <= set(quick)


def test_quickstart_runs_verbatim_with_the_venv_on_path(tmp_path: Path) -> None:
    done = run_quickstart(Path(sys.executable).parent, tmp_path)
    assert done == quickstart_commands()
    assert (tmp_path / "quickstart.db").exists()  # relative to the config's folder
    assert {p.name for p in tmp_path.iterdir()} <= {
        "reconciler.toml", "quickstart.db", "quickstart.db-wal", "quickstart.db-shm"}


@pytest.mark.slow
def test_setup_and_quickstart_from_a_fresh_clone(tmp_path: Path) -> None:
    """The two set-up commands in a clone of the committed tree, then the quick start."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clone = tmp_path / "calendar-reconciler"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    for command in commands(_block_after((clone / "README.md").read_text(encoding="utf-8"),
                                         "## Set up")):
        result = subprocess.run(["bash", "-c", command], cwd=clone, env=env, text=True,
                                capture_output=True, timeout=1800)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
    folder = tmp_path / "quickstart"
    folder.mkdir()
    done = run_quickstart(clone / ".venv" / "bin", folder)
    assert done and (folder / "quickstart.db").exists()


def test_the_emulator_without_pytest_snippet_runs_and_imports_no_pytest() -> None:
    """docs/emulator.md's "without pytest" snippet, verbatim, in a fresh interpreter."""
    text = (REPO / "docs" / "emulator.md").read_text(encoding="utf-8")
    snippet = text.split("or without pytest:", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    probe = "\nimport sys\nassert 'pytest' not in sys.modules, 'the snippet imported pytest'\n"
    result = subprocess.run([sys.executable, "-c", snippet + probe], cwd=REPO, text=True,
                            capture_output=True, timeout=120, env=_env(Path(sys.executable).parent))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "calendar#calendarList"

"""The shipped deployment files: the systemd unit verifies and sandboxes; the example config loads."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from reconciler.config import parse_config
from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "reconciler.service"
EXAMPLE = REPO / "deploy" / "reconciler.toml"
STATE = "/var/lib/reconciler"
CONFIG = "/etc/reconciler/reconciler.toml"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def exec_start() -> list[str]:
    return shlex.split(unit()["Service"]["ExecStart"])


def test_unit_has_the_required_keys() -> None:
    service = unit()["Service"]
    assert service.get("User") == "reconciler" or service.get("DynamicUser") == "yes"
    assert service["StateDirectory"] == "reconciler"
    assert service["WorkingDirectory"] == STATE
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    # `run` exits within 15 s of SIGTERM (DESIGN.md): the stop timeout leaves room for it.
    assert 15 < int(service["TimeoutStopSec"]) <= 30
    assert service["Restart"] == "on-failure"
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes",
                       "PrivateTmp": "yes", "PrivateDevices": "yes",
                       "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
                       "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes"}.items():
        assert service.get(key) == value, key
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert STATE in service["ReadWritePaths"].split()
    assert service["CapabilityBoundingSet"] == ""
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_exec_start_uses_the_shipped_config_and_json_logs() -> None:
    argv = exec_start()
    assert PurePosixPath(argv[0]).is_absolute() and PurePosixPath(argv[0]).name == "reconciler"
    assert argv[1:] == ["-c", CONFIG, "--log-format", "json", "run"]


def test_exec_start_arguments_are_accepted_by_the_real_cli(tmp_path: Path) -> None:
    # The unit's own arguments, with the config swapped for a local one: `run --help`
    # parses every option without starting the service.
    argv = [arg if arg != CONFIG else str(tmp_path / "reconciler.toml") for arg in exec_start()[1:]]
    result = run_cli(None, *argv, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_example_config_loads_and_keeps_its_database_in_the_state_directory(tmp_path: Path) -> None:
    (tmp_path / "service-account.json").write_text("{}", encoding="utf-8")
    config = parse_config(EXAMPLE.read_text(encoding="utf-8"), path=tmp_path / "reconciler.toml",
                          env={})
    path = config.database.sqlite_path
    assert path is not None
    assert PurePosixPath(path).is_absolute() and PurePosixPath(path).parent == PurePosixPath(STATE)
    service = unit()["Service"]
    assert path.startswith(service["WorkingDirectory"] + "/")
    assert [a.name for a in config.accounts] == ["ops"]
    assert config.accounts[0].credentials == tmp_path / "service-account.json"


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd provides it); "
                    "the unit's keys are still checked statically above")
    return tool


def _installable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's real entry point (verify checks it)."""
    entry = Path(sys.executable).parent / "reconciler"
    if not entry.exists():
        pytest.skip(f"no installed `reconciler` entry point beside {sys.executable}")
    text = UNIT.read_text(encoding="utf-8").replace(exec_start()[0], str(entry))
    copy = tmp_path / "reconciler.service"
    copy.write_text(text, encoding="utf-8")
    return copy


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    copy = _installable_copy(tmp_path)
    result = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True,
                            timeout=120)
    # verify exits 0 even for unknown keys or bad values: every line about the unit is a problem.
    about_unit = [line for line in result.stderr.splitlines() if "reconciler.service" in line]
    assert result.returncode == 0 and not about_unit, result.stderr


def test_systemd_analyze_verify_would_catch_a_typo(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    copy = _installable_copy(tmp_path)
    copy.write_text(copy.read_text(encoding="utf-8").replace("ProtectSystem=", "ProtectSytem="),
                    encoding="utf-8")
    result = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True,
                            timeout=120)
    assert "ProtectSytem" in result.stderr


def test_sandbox_exposure_is_low(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    copy = _installable_copy(tmp_path)
    result = subprocess.run([tool, "security", "--offline=true", "--no-pager", str(copy)],
                            capture_output=True, text=True, timeout=120)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    if result.returncode != 0 and found is None:
        pytest.skip(f"this systemd-analyze has no offline security check: {result.stderr.strip()}")
    assert found is not None, result.stdout
    assert float(found.group(1)) <= 2.0, result.stdout

"""The unit files in systemd/ are what the image enables: systemd itself must accept them.

`systemd-analyze verify` loads each unit as PID 1 would (directives, paths, dependencies);
the ExecStart binary is pointed at this checkout's `blvm` because verify checks that it
exists. `systemd-analyze security --offline` scores the sandbox; ours must stay "OK" (< 2).
Every command line a unit runs must parse with our own CLI, so a renamed flag fails here.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import build_parser
from tests.conftest import require_interop

ROOT = Path(__file__).resolve().parents[3]
UNITS = sorted((ROOT / "systemd").glob("*.service"))
IMAGE_BLVM = "/opt/blvm/venv/bin/blvm"
MAX_EXPOSURE = 2.0


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        require_interop("systemd-analyze not found: install Debian's systemd package")
    return tool


def _local_copy(unit: Path, tmp_path: Path, text: str | None = None) -> Path:
    blvm = Path(sys.executable).with_name("blvm")
    body = (unit.read_text() if text is None else text).replace(IMAGE_BLVM, str(blvm))
    copy = tmp_path / unit.name
    copy.write_text(body)
    return copy


def _exec_lines(unit: Path) -> list[list[str]]:
    lines = []
    for line in unit.read_text().splitlines():
        match = re.match(r"^(ExecStart|ExecStartPre|ExecStop|ExecReload)=-?(.*)$", line)
        if match:
            lines.append(shlex.split(match.group(2)))
    return lines


def test_units_exist() -> None:
    names = {u.name for u in UNITS}
    assert {"blvm-node.service", "blvm-stratum-v2.service"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    copy = _local_copy(unit, tmp_path)
    result = subprocess.run(
        [_analyze(), "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt directive is reported."""
    unit = ROOT / "systemd" / "blvm-node.service"
    broken = unit.read_text().replace("WatchdogSec=", "WatchdogSecs=")
    copy = _local_copy(unit, tmp_path, broken)
    result = subprocess.run(
        [_analyze(), "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert "WatchdogSecs" in result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_is_hardened(unit: Path, tmp_path: Path) -> None:
    copy = _local_copy(unit, tmp_path)
    result = subprocess.run(
        [_analyze(), "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) < MAX_EXPOSURE, result.stdout
    text = unit.read_text()
    for directive in ("Type=notify", "WatchdogSec=", "User=blvm", "NoNewPrivileges=yes"):
        assert directive in text, f"{unit.name} lacks {directive}"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_command_lines_parse(unit: Path) -> None:
    parser = build_parser()
    for argv in _exec_lines(unit):
        assert argv[0] == IMAGE_BLVM, argv
        args = parser.parse_args(argv[1:])
        assert hasattr(args, "func"), argv


def test_sysusers_creates_the_service_account() -> None:
    line = (ROOT / "systemd" / "sysusers.d" / "blvm.conf").read_text()
    assert re.search(r"^u blvm - .* /var/lib/blvm$", line, re.M)

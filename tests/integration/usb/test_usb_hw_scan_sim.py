"""`blvm hw scan --json` finds a running `blvm sim --chips 4 --model BM1370` by probing its pty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.sim.discovery import list_sim_boards
from drivers.transport.discovery import port_users

CLI = "import sys; from appliance.cli import main; sys.exit(main())"


def _blvm(*args: str, env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, **kw)


@pytest.fixture
def running_sim(tmp_path: Path):
    env = dict(os.environ, BLVM_SIM_RUNTIME_DIR=str(tmp_path))
    sim = _blvm(
        "sim",
        "--chips",
        "4",
        "--model",
        "BM1370",
        "--duration",
        "60",
        "--hashrate-hps",
        "1000",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            records = list_sim_boards(base=tmp_path)
            if records:
                break
            assert sim.poll() is None, "blvm sim exited early"
            time.sleep(0.1)
        else:
            pytest.fail("blvm sim did not publish a discovery record within 15 s")
        yield env, records[0], sim
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()


def _scan(env: dict[str, str]) -> dict:
    proc = _blvm(
        "hw",
        "scan",
        "--json",
        "--no-usb",
        "--no-serial",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_hw_scan_finds_running_sim_board(running_sim) -> None:
    env, record, _sim = running_sim
    data = _scan(env)
    sims = [b for b in data["boards"] if b["source"] == "sim"]
    assert len(sims) == 1
    board = sims[0]
    assert board["port"] == record.port
    assert board["status"] == "ok"  # probed over the pty, not just read from the record
    assert board["chip_model"] == "BM1370"
    assert board["chip_count"] == 4
    assert board["board"] == "quad-bm1370"
    assert board["extra"]["bytes_received"] == 4 * 11
    assert data["found"] == 1


def test_hw_scan_leaves_a_busy_sim_port_alone(running_sim) -> None:
    env, record, _sim = running_sim
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import os, time; fd = os.open({record.port!r}, os.O_RDONLY | os.O_NOCTTY); time.sleep(60)",
        ]
    )
    try:
        for _ in range(200):
            if port_users(record.port, ignore_pids=[record.pid]):
                break
            time.sleep(0.05)
        board = next(b for b in _scan(env)["boards"] if b["source"] == "sim")
        assert board["status"] == "busy"
        assert str(holder.pid) in board["detail"]
        # Model and count come from the simulator's own record instead.
        assert (board["chip_model"], board["chip_count"]) == ("BM1370", 4)
    finally:
        holder.kill()
        holder.wait()


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = _blvm(*args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out + err


def test_hw_sensors_reads_a_running_sim_board_and_flags_a_dead_diode(running_sim) -> None:
    env, record, _sim = running_sim
    code, out = _run(env, "hw", "sensors", "--sim", record.id, "--json")
    assert code == 0, out
    data = json.loads(out.splitlines()[0])
    assert data["board"] == "quad-bm1370" and data["errors"] == []
    assert data["fan"]["part"] == "EMC2101"
    assert 0 < data["fan"]["rpm"] < 20_000
    assert 10 < data["fan"]["chip_temp_c"] < 100
    # Two series domains: the regulator's Vout is twice the per-chip core voltage.
    assert data["power"]["vout_v"] == pytest.approx(2 * data["power"]["vcore_mv"] / 1000, abs=0.01)
    assert data["power"]["on"] is True and data["power"]["faults"] == []

    code, _ = _run(env, "sim", "fault", "sensor-fail", "--board", record.id)
    assert code == 0
    code, out = _run(env, "hw", "sensors", "--sim", record.id, "--json")
    assert code == 1
    data = json.loads(out.splitlines()[0])
    assert "open" in data["fan"]["chip_temp_c"]["error"]
    assert any(e.startswith("fan.chip_temp_c") for e in data["errors"])

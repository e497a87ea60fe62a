"""A simulated board on a real pty, driven through pyserial like a host would."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial

from drivers.i2c.bus import I2CError
from drivers.i2c.emc2101 import EMC2101
from drivers.i2c.tps546 import TPS546
from drivers.sim import testing as host
from drivers.sim.board import SimBoardConfig
from drivers.sim.control import ControlClient, RemoteI2CBus
from drivers.sim.discovery import list_sim_boards
from drivers.sim.pty_board import PtyBoard
from protocols.stratum_v1.work import difficulty_to_target

REPO = Path(__file__).resolve().parents[3]
HEADER = bytes.fromhex("00000020") + bytes(range(64)) + bytes.fromhex("0000ffffffff7f20") + bytes(4)


class Running:
    def __init__(self, board: PtyBoard) -> None:
        self.board = board
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=board.run, kwargs={"should_stop": self.stop.is_set}, daemon=True
        )

    def control(self) -> ControlClient:
        return ControlClient(self.board.control_path)


@pytest.fixture
def start_board(tmp_path):
    running: list[Running] = []

    def start(**config) -> Running:
        config.setdefault("seed", 5)
        board = PtyBoard(SimBoardConfig(**config), board_id=f"t{len(running)}", base_dir=tmp_path)
        board.open()
        r = Running(board)
        r.thread.start()
        running.append(r)
        return r

    yield start
    for r in running:
        r.stop.set()
        r.thread.join(5)
        r.board.close()


def read_frames(port: serial.Serial, reply_len: int, want: int, timeout: float = 2.0):
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
        if len(host.parse_replies(data, reply_len)) >= want:
            break
    return host.parse_replies(data, reply_len)


def test_enumerate_over_pty_and_discovery(start_board, tmp_path):
    r = start_board(model="BM1370", chips=4)
    (record,) = list_sim_boards(tmp_path)
    assert record.port == r.board.port and record.chips == 4 and record.pid == os.getpid()
    assert os.path.realpath(record.link) == record.port
    with serial.Serial(record.port, 115200, timeout=0.2) as port:
        port.write(host.read_register(0x00))
        replies = read_frames(port, 11, 4)
    assert [r.raw[:10] for r in replies] == [bytes.fromhex("AA551370000000000000")] * 4
    assert all(rep.crc_ok for rep in replies)


def test_wrong_baud_gets_nothing(start_board):
    r = start_board(model="BM1370", chips=1)
    with serial.Serial(r.board.port, 9600, timeout=0.3) as port:
        port.write(host.read_register(0x00))
        assert port.read(64) == b""
    assert r.board.bytes_lost_baud >= 7
    assert r.board.board.chain.stats.frames_rx == 0


def test_fast_uart_switch_requires_host_to_follow(start_board):
    r = start_board(model="BM1370", chips=2)
    with serial.Serial(r.board.port, 115200, timeout=0.3) as port:
        port.write(bytes.fromhex("55AA51090028113002 0003".replace(" ", "")))
        time.sleep(0.2)
        port.write(host.read_register(0x00))
        assert port.read(64) == b""  # chips now talk at 1 Mbaud
        port.baudrate = 1_000_000
        port.write(host.read_register(0x00))
        assert len(read_frames(port, 11, 2)) == 2
    (record,) = list_sim_boards(r.board.base_dir)
    assert record.baud == 1_000_000  # the discovery record follows the chips' UART rate


def test_bm1397_custom_baud_over_pty(start_board):
    r = start_board(model="BM1397", chips=1)
    with serial.Serial(r.board.port, 115200, timeout=0.3) as port:
        port.write(host.write_register(0x18, 0x00006031))
        time.sleep(0.2)
        port.baudrate = 3_125_000
        port.write(host.read_register(0x00))
        (reply,) = read_frames(port, 9, 1)
    assert reply.value >> 16 == 0x1397


def test_mining_over_pty_returns_real_solutions(start_board):
    difficulty = 1e-6
    r = start_board(model="BM1370", chips=2, hashrate_hps=100_000, sim_ticket_difficulty=difficulty)
    with serial.Serial(r.board.port, 115200, timeout=0.2) as port:
        port.write(host.chain_inactive() + host.set_address(0) + host.set_address(128))
        port.write(host.write_register(0xA4, 0x9000FFFF))
        port.write(host.bm136x_job(0x18, HEADER))
        replies = read_frames(port, 11, 3, timeout=6.0)
    assert len(replies) >= 3
    for rep in replies:
        version = 0x20000000 | (rep.version_bits << 13)
        full = host.header_with_nonce(HEADER, rep.nonce_bytes, version)
        digest = hashlib.sha256(hashlib.sha256(full).digest()).digest()
        assert int.from_bytes(digest, "little") <= difficulty_to_target(difficulty)
        assert rep.chip_address in (0, 128)


def test_control_socket_status_faults_and_i2c(start_board):
    r = start_board(model="BM1370", chips=1)
    with r.control() as ctl:
        status = ctl.checked({"cmd": "status"})["status"]
        assert status["port"] == r.board.port and status["chips"] == 1
        ctl.checked({"cmd": "fault", "name": "crc"})
        with serial.Serial(r.board.port, 115200, timeout=0.2) as port:
            port.write(host.read_register(0x00))
            (reply,) = read_frames(port, 11, 1)
            assert not reply.crc_ok
            ctl.checked({"cmd": "clear"})
            port.write(host.read_register(0x00))
            (reply,) = read_frames(port, 11, 1)
            assert reply.crc_ok
        assert not ctl.request({"cmd": "fault", "name": "gremlins"})["ok"]
        assert not ctl.request({"cmd": "bogus"})["ok"]
    bus = RemoteI2CBus(r.board.control_path)
    emc = EMC2101(bus)
    emc.init(duty=0.6)
    assert emc.fan_duty() == pytest.approx(38 / 63)
    vr = TPS546(bus)
    assert vr.read_vout() == pytest.approx(1.15, abs=0.003)
    with pytest.raises(I2CError):
        bus.read_byte_data(0x51, 0)
    with pytest.raises(ValueError):
        bus.write_byte_data(0x4C, 0x4C, 999)
    bus.close()


def test_unplug_closes_port_and_replugs_at_the_link(start_board, tmp_path):
    r = start_board(model="BM1370", chips=1)
    link = r.board.link
    port = serial.Serial(r.board.port, 115200, timeout=0.2)
    with r.control() as ctl:
        ctl.checked({"cmd": "fault", "name": "unplug", "value": 1.0})
    deadline = time.monotonic() + 2
    while not r.board.unplugged and time.monotonic() < deadline:
        time.sleep(0.02)
    assert r.board.unplugged
    assert list_sim_boards(tmp_path)[0].port == ""
    with pytest.raises(serial.SerialException):
        port.write(host.read_register(0x00))
        port.read(11)
        port.read(11)
    port.close()
    deadline = time.monotonic() + 3
    while r.board.unplugged and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not r.board.unplugged
    assert os.path.realpath(link) == r.board.port == list_sim_boards(tmp_path)[0].port
    with serial.Serial(link, 115200, timeout=0.2) as again:
        again.write(host.read_register(0x00))
        assert len(read_frames(again, 11, 1)) == 1


def test_cpu_use_is_bounded(start_board):
    r = start_board(model="BM1370", chips=1, hashrate_hps=10_000_000)  # far beyond one core
    time.sleep(0.3)
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(1.5)
    idle = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    assert idle < 0.05, f"idle board used {idle:.1%} CPU"
    with serial.Serial(r.board.port, 115200, timeout=0.2) as port:
        port.write(host.bm136x_job(0x18, HEADER))
        time.sleep(0.5)
        cpu0, wall0 = time.process_time(), time.monotonic()
        while time.monotonic() - wall0 < 2.0:  # a chatty host keeps waking the loop
            port.write(host.read_register(0x8C, address=0))
            time.sleep(0.005)
        busy = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        assert port.read(11)  # and still gets answers
    assert r.board.board.chain.stats.real_hashes > 0
    assert busy < 0.5 + 0.15, f"hashing board used {busy:.1%} CPU (cap 50 %)"


def test_blvm_sim_cli_end_to_end(tmp_path):
    env = dict(os.environ, BLVM_SIM_RUNTIME_DIR=str(tmp_path))
    blvm = [sys.executable, "-c", "import sys; from appliance.cli import main; sys.exit(main())"]
    cmd = [*blvm, "sim", "--chips", "2", "--json", "--id", "cli"]
    proc = subprocess.Popen(
        [*cmd, "--status-interval", "0.5", "--duration", "20"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready" and ready["chips"] == 2
        status = json.loads(proc.stdout.readline())
        assert status["event"] == "status" and status["model"] == "BM1370"
        fault = subprocess.run(
            [*blvm, "sim", "fault", "chip-dropout", "--value", "1", "--json"],
            capture_output=True, text=True, env=env, cwd=REPO, check=False,
        )  # fmt: skip
        assert fault.returncode == 0, fault.stdout + fault.stderr
        assert json.loads(fault.stdout)["faults"]["dead_chips"] == [1]
        with serial.Serial(ready["port"], 115200, timeout=0.2) as port:
            port.write(host.read_register(0x00))
            assert len(read_frames(port, 11, 2, timeout=1.0)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not (tmp_path / "cli.json").exists()
    assert not (tmp_path / "cli.sock").exists()

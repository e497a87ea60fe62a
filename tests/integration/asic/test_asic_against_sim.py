"""The host ASIC driver against the simulated board on a real pty (drivers.sim.pty_board).

Everything crosses the wire as on hardware: SerialTransport (pyserial) on the pty, the
reset line pulsed through the board's control socket, baud switches visible to the sim
through termios (it passes no bytes while host and chips disagree), real double-SHA-256
nonces coming back.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from drivers.asic.bm13xx.chips import get_chip
from drivers.asic.driver import AsicDriver
from drivers.asic.job import MiningJob
from drivers.sim.board import SimBoardConfig
from drivers.sim.control import ControlClient
from drivers.sim.pty_board import PtyBoard
from drivers.transport.serial import SerialTransport

MODELS = ("BM1366", "BM1368", "BM1370", "BM1397")
SIM_DIFFICULTY = 2.0**-20  # ~1 nonce per 4096 hashes, so a CPU-speed chain shows results
SIM_HASHRATE = 40_000.0
START_MHZ = 100.0  # the PLL ramp runs 6.25 MHz per 100 ms; a low target keeps init short


class SimBoardRunner:
    def __init__(self, board: PtyBoard) -> None:
        self.board = board
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=board.run, kwargs={"should_stop": self.stop.is_set}, daemon=True
        )

    @property
    def chain(self):
        return self.board.board.chain

    def pulse_reset(self) -> None:
        with ControlClient(self.board.control_path) as control:
            control.checked({"cmd": "reset"})


@pytest.fixture
def sim_board(tmp_path):
    started: list[tuple[SimBoardRunner, SerialTransport]] = []

    def start(model: str, chips: int) -> tuple[SimBoardRunner, AsicDriver]:
        config = SimBoardConfig(
            model=model,
            chips=chips,
            hashrate_hps=SIM_HASHRATE,
            sim_ticket_difficulty=SIM_DIFFICULTY,
            voltage_domains=chips,  # one chip per domain keeps the stage inside its limits
            seed=3,
        )
        board = PtyBoard(config, board_id=f"a{len(started)}", base_dir=tmp_path, publish=False)
        board.open()
        runner = SimBoardRunner(board)
        runner.thread.start()
        transport = SerialTransport(board.port, reset_hook=runner.pulse_reset)
        started.append((runner, transport))
        driver = AsicDriver(
            transport,
            model,
            enum_timeout=0.5,
            counter_interval=0.5,
            silence_timeout=30.0,
            verify_difficulty=SIM_DIFFICULTY,
            frequency_mhz=START_MHZ,
        )
        return runner, driver

    yield start
    for runner, transport in started:
        transport.close()
        runner.stop.set()
        runner.thread.join(5)
        runner.board.close()


def job(i: int = 0, mask: int = 0x1FFFE000) -> MiningJob:
    return MiningJob(
        0x20000000,
        hashlib.sha256(b"prev%d" % i).digest(),
        hashlib.sha256(b"merkle%d" % i).digest(),
        1_700_000_000 + i,
        0x1703A30C,
        mask,
        ref=i,
    )


def eventually(condition, timeout: float = 2.0) -> bool:
    """The sim runs in its own loop: give it a moment to process what was written."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def mine(driver: AsicDriver, seconds: float) -> list:
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got += driver.service(timeout=0.05)
    return got


@pytest.mark.parametrize("model", MODELS)
def test_driver_against_simulated_board(sim_board, model):
    chips = 3
    runner, driver = sim_board(model, chips)
    spec = get_chip(model)

    # -- init: reset, enumeration, addressing, registers, PLL ramp, baud switch ----------
    chain = driver.init(chip_count_expected=chips)
    assert len(chain) == chips
    sim_chips = runner.chain.chips
    assert [c.address for c in sim_chips] == [c.address for c in chain.chips] == [0, 85, 170]
    # The sim processes what the host wrote in its own loop: wait for the last frames to land.
    assert eventually(lambda: all(c.frequency_mhz == pytest.approx(START_MHZ) for c in sim_chips))
    assert eventually(lambda: all(c.ticket_difficulty == 256 for c in sim_chips))
    assert eventually(lambda: abs(runner.chain.baud - spec.fast_baud) < 0.05 * spec.fast_baud)
    assert runner.board.host_baud() == spec.fast_baud == driver.baud

    # -- a job produces nonces the host verifies; version rolling is visible ------------
    driver.send_job(job(1))
    got = mine(driver, 2.5)
    assert len(got) >= 5, driver.stats()
    # the sim's physics lets marginal cores emit the odd bad nonce: the host must catch
    # those (and only those) as hardware errors
    assert driver.counters.hw_errors <= runner.chain.stats.hw_errors_tx
    for n in got:
        assert hashlib.sha256(hashlib.sha256(n.header()).digest()).digest() == n.hash
        assert n.job.ref == 1
        assert n.version & ~0x1FFFE000 == 0x20000000
    assert len({n.version for n in got}) > 1
    assert len({n.chip_index for n in got}) >= 2

    # -- frequency changes reach the chips' PLL registers ------------------------------
    new_mhz = START_MHZ + 25
    driver.set_frequency(new_mhz)
    assert eventually(lambda: all(abs(c.frequency_mhz - new_mhz) < 0.5 for c in sim_chips))

    # -- counters drive the hashrate estimate -------------------------------------------
    mine(driver, 3.0)
    modelled = sum(c.modelled_hashrate for c in sim_chips)
    counter_rate = driver.chain.hashrate(time.monotonic(), 60, "counters")
    assert counter_rate == pytest.approx(modelled, rel=0.2)
    assert driver.chain.expected_hashrate() == pytest.approx(modelled, rel=0.01)
    nonce_rate = driver.chain.hashrate(time.monotonic(), 60, "nonces")
    assert nonce_rate > 0

    # -- a new block clears work at once --------------------------------------------------
    driver.new_block(job(2))
    later = mine(driver, 1.5)
    assert later and all(n.job.ref == 2 for n in later)
    stats = driver.stats()
    assert stats["hw_errors"] <= runner.chain.stats.hw_errors_tx and stats["clean_jobs"] == 1


def test_dead_chip_is_reported_and_chain_reinitialised(sim_board):
    runner, driver = sim_board("BM1370", 3)
    driver.silence_timeout = 2.0
    driver.init(3)
    driver.send_job(job(5))
    mine(driver, 1.0)
    with ControlClient(runner.board.control_path) as control:
        control.checked({"cmd": "fault", "name": "chip-dropout", "on": True, "value": 2})
    mine(driver, 4.0)
    assert driver.last_health is not None
    assert 2 in driver.last_health.silent_chips
    assert driver.counters.reinits >= 1 and len(driver.chain) == 2
    assert mine(driver, 1.5), "the surviving chips hash again after re-init"


def test_crc_faults_are_dropped_and_counted(sim_board):
    runner, driver = sim_board("BM1366", 2)
    driver.init(2)
    with ControlClient(runner.board.control_path) as control:
        control.checked({"cmd": "fault", "name": "crc", "on": True, "value": 0.3})
    driver.send_job(job(7))
    got = mine(driver, 2.0)
    stats = driver.stats()
    assert stats["frames_dropped"] > 0
    assert got and stats["hw_errors"] <= stats["nonces_valid"]

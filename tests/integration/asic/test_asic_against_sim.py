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
from drivers.asic.bm13xx.registers import Register
from drivers.asic.driver import AsicDriver
from drivers.asic.job import MiningJob
from drivers.i2c.tps546 import TPS546, PowerLimits, PowerStageFault
from drivers.sim.board import SimBoardConfig
from drivers.sim.control import ControlClient, RemoteI2CBus
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

    def start(
        model: str, chips: int, *, via_link: bool = False
    ) -> tuple[SimBoardRunner, AsicDriver]:
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
        # The stable <id>.tty link follows the board across an unplug, as /dev/serial/by-id does.
        port = board.link if via_link else board.port
        transport = SerialTransport(port, reset_hook=runner.pulse_reset)
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


def mine_until(driver: AsicDriver, condition, timeout: float = 15.0) -> list:
    """Run the mining loop until ``condition(nonces so far)`` holds (or time runs out).

    Tests wait on what they need to see, never for a fixed time: the box is shared and the
    sim's hashing speed follows the CPU it gets.
    """
    got: list = []
    end = time.monotonic() + timeout
    while not condition(got) and time.monotonic() < end:
        got += driver.service(timeout=0.05)
    return got


def chips_applied_writes(driver: AsicDriver, register: int) -> dict[int, int]:
    """Read ``register`` back from every chip over the wire.

    The UART is ordered: once each chip has answered this read, the sim has processed every
    frame the host wrote before it, so its state can be checked without polling or sleeps.
    """
    values = driver.read_register(register, timeout=10.0)
    assert sorted(values) == list(range(len(driver.chain))), values
    return values


def fault(runner: SimBoardRunner, name: str, value=None, on: bool = True) -> None:
    with ControlClient(runner.board.control_path) as control:
        control.checked({"cmd": "fault", "name": name, "on": on, "value": value})


def check_nonce(n, ref: int) -> None:
    assert hashlib.sha256(hashlib.sha256(n.header()).digest()).digest() == n.hash
    assert n.job.ref == ref


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
    # An answer at the fast baud proves the chips switched; it also orders the checks below.
    pll = chips_applied_writes(driver, Register.PLL0)
    assert len(set(pll.values())) == 1
    assert all(c.frequency_mhz == pytest.approx(START_MHZ) for c in sim_chips)
    assert all(c.ticket_difficulty == 256 for c in sim_chips)
    assert abs(runner.chain.baud - spec.fast_baud) < 0.05 * spec.fast_baud
    assert runner.board.host_baud() == spec.fast_baud == driver.baud

    # -- a job produces nonces the host verifies; version rolling is visible ------------
    driver.send_job(job(1))

    def enough(got: list) -> bool:
        return (
            len(got) >= 5
            and len({n.version for n in got}) > 1
            and len({n.chip_index for n in got}) >= 2
        )

    got = mine_until(driver, enough)
    assert enough(got), driver.stats()
    # the sim's physics lets marginal cores emit the odd bad nonce: the host must catch
    # those (and only those) as hardware errors
    assert driver.counters.hw_errors <= runner.chain.stats.hw_errors_tx
    for n in got:
        assert hashlib.sha256(hashlib.sha256(n.header()).digest()).digest() == n.hash
        assert n.job.ref == 1
        assert n.version & ~0x1FFFE000 == 0x20000000

    # -- frequency changes reach the chips' PLL registers ------------------------------
    new_mhz = START_MHZ + 25
    driver.set_frequency(new_mhz)
    chips_applied_writes(driver, Register.PLL0)
    assert all(abs(c.frequency_mhz - new_mhz) < 0.5 for c in sim_chips)

    # -- counters drive the hashrate estimate -------------------------------------------
    start = time.monotonic()
    mine_until(driver, lambda _: time.monotonic() - start >= 3.0, 3.0)
    modelled = sum(c.modelled_hashrate for c in sim_chips)
    counter_rate = driver.chain.hashrate(time.monotonic(), 60, "counters")
    assert counter_rate == pytest.approx(modelled, rel=0.2)
    assert driver.chain.expected_hashrate() == pytest.approx(modelled, rel=0.01)
    assert driver.chain.hashrate(time.monotonic(), 60, "nonces") > 0

    # -- a new block clears work at once --------------------------------------------------
    driver.new_block(job(2))
    later = mine_until(driver, lambda got: len(got) >= 2)
    assert len(later) >= 2 and all(n.job.ref == 2 for n in later)
    stats = driver.stats()
    assert stats["hw_errors"] <= runner.chain.stats.hw_errors_tx and stats["clean_jobs"] == 1


def test_dead_chip_is_reported_and_chain_reinitialised(sim_board):
    runner, driver = sim_board("BM1370", 3)
    driver.silence_timeout = 2.0
    driver.init(3)
    driver.send_job(job(5))
    assert mine_until(driver, lambda got: len(got) >= 1)
    fault(runner, "chip-dropout", 2)
    mine_until(driver, lambda _: driver.counters.reinits >= 1)
    assert driver.last_health is not None, driver.stats()
    assert 2 in driver.last_health.silent_chips
    stats = driver.stats()
    assert stats["silent_chip_events"] >= 1 and stats["reinits"] >= 1
    assert len(driver.chain) == 2 and driver.last_health.chips_after == 2
    after = mine_until(driver, lambda got: len(got) >= 2)
    assert len(after) >= 2, "the surviving chips hash again after re-init"
    for n in after:
        check_nonce(n, 5)


def test_crc_faults_are_dropped_and_counted(sim_board):
    runner, driver = sim_board("BM1366", 2)
    driver.init(2)
    fault(runner, "crc", 0.3)
    driver.send_job(job(7))
    got = mine_until(driver, lambda got: got and driver.stats()["frames_crc_errors"] >= 3)
    stats = driver.stats()
    assert stats["frames_dropped"] >= stats["frames_crc_errors"] >= 3, stats
    assert got and stats["hw_errors"] <= stats["nonces_valid"]
    fault(runner, "crc", on=False)
    dropped = driver.stats()["frames_dropped"]
    after = mine_until(driver, lambda got: len(got) >= 3)
    assert len(after) >= 3, driver.stats()
    for n in after:
        check_nonce(n, 7)
    assert driver.chain is not None and len(driver.chain) == 2
    assert driver.stats()["frames_dropped"] >= dropped  # counted, never reset


def test_serial_unplug_replug_recovers_in_process(sim_board):
    runner, driver = sim_board("BM1370", 2, via_link=True)
    driver.replug_wait_s = 0.2
    driver.init(2)
    driver.send_job(job(9))
    assert len(mine_until(driver, lambda got: len(got) >= 2, 10.0)) >= 2

    fault(runner, "unplug", 1.0)
    # The loop keeps running through the unplug: service() neither raises nor spins.
    mine_until(driver, lambda _: driver.counters.device_lost >= 1, 5.0)
    assert driver.counters.device_lost == 1, driver.stats()
    assert driver.stats()["device_present"] is False
    reinits_before = driver.counters.reinits

    after = mine_until(driver, lambda got: len(got) >= 3, 15.0)
    stats = driver.stats()
    assert stats["device_lost"] == 1 and stats["device_recovered"] == 1, stats
    assert stats["device_present"] and driver.counters.reinits == reinits_before + 1
    assert runner.board.port and driver.transport.reopens == 1
    # Chips were power-cycled: re-enumerated, back on the fast UART, hashing the last job.
    assert len(driver.chain) == 2 and driver.baud == get_chip("BM1370").fast_baud
    assert len(after) >= 3, stats
    for n in after:
        check_nonce(n, 9)


def test_byte_drop_fault_is_dropped_counted_and_mining_continues(sim_board):
    runner, driver = sim_board("BM1368", 2)
    driver.init(2)
    driver.send_job(job(11))
    fault(runner, "drop", 0.02)
    during = mine_until(driver, lambda _: driver.stats()["frames_dropped"] >= 3, 10.0)
    stats = driver.stats()
    assert stats["frames_dropped"] >= 3, stats
    for n in during:  # whatever got through intact still verifies
        check_nonce(n, 11)
    fault(runner, "drop", on=False)
    after = mine_until(driver, lambda got: len(got) >= 3, 10.0)
    assert len(after) >= 3, driver.stats()
    for n in after:
        check_nonce(n, 11)
    assert driver.chain is not None and len(driver.chain) == 2


def test_over_current_trip_silences_the_chain_and_mining_recovers(sim_board):
    """The power stage latches off: chips go dark, the driver keeps retrying re-init; after
    the thermal side clears the fault and re-enables the stage, mining resumes by itself."""
    runner, driver = sim_board("BM1370", 2)
    driver.silence_timeout = 1.5
    driver.reinit_retry_s = 0.5
    driver.init(2)
    driver.send_job(job(13))
    assert mine_until(driver, lambda got: len(got) >= 1)
    bus = RemoteI2CBus(runner.board.control_path)
    vr = TPS546(bus, limits=PowerLimits(1.0, 4.5))
    vout = vr.read_vout()
    vr.check()

    fault(runner, "over-current")
    mine_until(driver, lambda _: driver.counters.failed_reinits >= 1)
    with pytest.raises(PowerStageFault, match="IOUT_OC_FAULT"):
        vr.check()
    assert not vr.is_on() and vr.fault_log.counts["IOUT_OC_FAULT"] == 1
    stats = driver.stats()
    assert stats["silent_chip_events"] == 1 and stats["failed_reinits"] >= 1, stats
    assert driver.chain is None  # reported and dropped, not stuck: re-init is retried

    fault(runner, "over-current", on=False)
    vr.clear_faults()
    vr.set_vout(vout)
    vr.check()
    after = mine_until(driver, lambda got: len(got) >= 2)
    assert driver.chain is not None and len(driver.chain) == 2, driver.stats()
    assert len(after) >= 2
    for n in after:
        check_nonce(n, 13)
    bus.close()

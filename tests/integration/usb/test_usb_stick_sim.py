"""A GekkoScience Compac F-class USB stick, end to end over the simulated FTDI bridge.

The real USB transport (pyusb, FTDI control requests, modem-status stripping) talks to
``drivers.sim.usb_backend.SimUsbBackend``, which puts the simulator's BM1397 chain
behind an emulated FT-X. The ASIC driver runs unmodified on top: reset through CBUS,
enumeration, baud switch to 1.5 Mbaud, a job, and nonces the host re-hashes. Then the
stick is pulled and plugged back in, and the same process recovers.
"""

from __future__ import annotations

import hashlib
import time

import pytest

from drivers.asic.driver import AsicDriver, VerifiedNonce
from drivers.asic.job import MiningJob
from drivers.boards import asic_spec, get_board
from drivers.sim.chips import SimChain
from drivers.sim.usb_backend import SimUsbBackend
from drivers.transport.base import TransportError
from drivers.transport.usb import DeviceGone, UsbTransport

# Simulation only: the chips report nonces at this (tiny) difficulty so a CPU-budget
# chain produces several per second; the host verifies at the same difficulty.
SIM_DIFFICULTY = 2.0**-16
SIM_HASHRATE = 150_000.0
DIFF1 = 0xFFFF << 208

JOB = MiningJob(
    version=0x20000000,
    prev_hash=bytes(range(32)),
    merkle_root=hashlib.sha256(b"blvm usb stick").digest(),
    ntime=0x6740_0000,
    nbits=0x1D00FFFF,
    version_mask=0x1FFFE000,
)


@pytest.fixture
def stick():
    board = get_board("compac-f")
    backend = SimUsbBackend(
        lambda: SimChain(
            "BM1397",
            board.chip_count,
            hashrate_hps=SIM_HASHRATE,
            sim_ticket_difficulty=SIM_DIFFICULTY,
            seed=7,
        )
    )
    resets: list[float] = []
    transport = UsbTransport.for_board(board, backend=backend, sleep=resets.append)
    driver = AsicDriver(
        transport,
        asic_spec(board),
        sleep=lambda s: None,
        frequency_mhz=board.default_freq_mhz,
        enum_timeout=0.3,
        verify_difficulty=SIM_DIFFICULTY,
    )
    yield board, backend, transport, driver, resets
    driver.close()


def _collect(driver: AsicDriver, want: int, budget_s: float = 30.0) -> list[VerifiedNonce]:
    found: list[VerifiedNonce] = []
    deadline = time.monotonic() + budget_s
    while len(found) < want and time.monotonic() < deadline:
        found += driver.poll(0.1)
    return found


def _check_nonce(n: VerifiedNonce) -> None:
    header = n.job.header(n.nonce, n.version)
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    assert digest == n.hash
    assert int.from_bytes(digest, "little") * SIM_DIFFICULTY < DIFF1
    # Rolled versions stay inside the BIP320 mask around the job's version.
    assert (n.version & ~0x1FFFE000) == (JOB.version & ~0x1FFFE000)


def test_usb_stick_init_enumerates_and_switches_baud(stick) -> None:
    board, backend, transport, driver, resets = stick
    chain = driver.init(chip_count_expected=1)
    assert len(chain) == 1
    # CBUS reset with the stick's timing: CB1 low 1000 ms, then high 200 ms.
    cbus = [r.w_value for r in backend.control_log if r.b_request == 0x0B]
    assert cbus == [0x20F2, 0x20F0, 0x20F2]
    assert resets == [1.0, 0.2]
    # Chips at 1.5625 Mbaud (reg 0x18 = 00 00 61 31), bridge at divisor 2 = 1.5 Mbaud.
    assert backend.chain.baud == 1_562_500
    assert backend.host_baud == 1_500_000
    assert transport.actual_baud == 1_500_000
    assert driver.baud == board.host_fast_baud


def test_usb_stick_job_produces_verified_nonces(stick) -> None:
    _, backend, transport, driver, _ = stick
    driver.init(chip_count_expected=1)
    driver.send_job(JOB, clean=True)
    nonces = _collect(driver, 3)
    assert len(nonces) >= 3, driver.stats()
    for n in nonces:
        _check_nonce(n)
    assert driver.counters.hw_errors == 0
    assert transport.bridge.stats.line_errors == 0
    assert backend.bytes_dropped == 0


def test_usb_stick_unplug_replug_recovers_in_process(stick) -> None:
    _, backend, transport, driver, _ = stick
    driver.init(chip_count_expected=1)
    driver.send_job(JOB, clean=True)
    assert _collect(driver, 1)

    backend.unplug()
    with pytest.raises(DeviceGone):
        for _ in range(20):
            driver.poll(0.05)
    assert issubclass(DeviceGone, TransportError)

    backend.replug()  # a new device address, chips power-cycled
    transport.reopen(wait_s=2.0, poll_s=0.02)
    report = driver.reinit()  # re-enumerate and resend the last job
    assert report.reinitialised and report.chips_after == 1
    assert backend.chain.baud == 1_562_500
    nonces = _collect(driver, 2)
    assert len(nonces) >= 2, driver.stats()
    for n in nonces:
        _check_nonce(n)
    assert driver.counters.hw_errors == 0


def test_usb_stick_unplug_is_recovered_by_the_mining_loop(stick) -> None:
    """``service()`` itself waits for the stick, reopens it, re-inits and resumes the job."""
    _, backend, _transport, driver, _ = stick
    driver.replug_wait_s = 0.05
    driver.init(chip_count_expected=1)
    driver.send_job(JOB, clean=True)
    assert _collect(driver, 1)

    backend.unplug()
    for _ in range(10):  # the loop keeps running while the stick is away
        assert driver.service(timeout=0.05) == []
    stats = driver.stats()
    assert stats["device_lost"] == 1 and stats["device_recovered"] == 0
    assert stats["device_present"] is False

    backend.replug()
    found: list[VerifiedNonce] = []
    deadline = time.monotonic() + 30.0
    while len(found) < 2 and time.monotonic() < deadline:
        found += driver.service(timeout=0.1)
    stats = driver.stats()
    assert stats["device_recovered"] == 1 and stats["device_present"], stats
    assert len(found) >= 2, stats
    for n in found:
        _check_nonce(n)
    assert backend.chain.baud == 1_562_500 and driver.counters.hw_errors == 0

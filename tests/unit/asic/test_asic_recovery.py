"""The mining loop never gets stuck: failed re-inits are retried, vanished devices waited for.

Runs the real driver against the in-process simulated chain on fake time; the serial and
USB unplug paths over real transports are in tests/integration (asic, usb).
"""

from __future__ import annotations

import hashlib

import pytest

from drivers.asic.driver import AsicDriver
from drivers.asic.job import MiningJob
from drivers.sim.chips import SimChain
from drivers.transport.base import DeviceGone
from tests.unit.asic.asic_simlink import FakeClock, SimChainTransport

SIM_DIFFICULTY = 2.0**-20

JOB = MiningJob(
    0x20000000,
    hashlib.sha256(b"prev").digest(),
    hashlib.sha256(b"merkle").digest(),
    1_700_000_000,
    0x1703A30C,
    0x1FFFE000,
    ref="recovery",
)


def make(transport_cls=SimChainTransport, **kw):
    clock = FakeClock()
    chain = SimChain("BM1370", 3, hashrate_hps=40_000, sim_ticket_difficulty=SIM_DIFFICULTY, seed=2)
    transport = transport_cls(chain, clock)
    driver = AsicDriver(
        transport,
        "BM1370",
        clock,
        sleep=clock.sleep,
        enum_timeout=0.5,
        counter_interval=1.0,
        silence_timeout=5.0,
        verify_difficulty=SIM_DIFFICULTY,
        **kw,
    )
    return driver, chain, clock


def run(driver: AsicDriver, seconds: float, clock: FakeClock) -> list:
    got, end = [], clock() + seconds
    while clock() < end:
        got += driver.service(timeout=0.2)
    return got


def test_failed_reinit_is_retried_until_the_chips_answer():
    driver, chain, clock = make(reinit_retry_s=2.0)
    driver.init(3)
    driver.send_job(JOB)
    assert run(driver, 5, clock)
    chain.set_powered(False)  # the power stage dropped out: every chip silent
    run(driver, 10, clock)  # no exception: reported, re-init tried, chain dropped
    stats = driver.stats()
    assert stats["silent_chip_events"] == 1 and stats["failed_reinits"] >= 1, stats
    assert driver.chain is None and driver.last_health.reinitialised is False
    failed = stats["failed_reinits"]
    run(driver, 6, clock)
    assert driver.counters.failed_reinits > failed  # retried every reinit_retry_s
    assert driver.counters.failed_reinits <= failed + 4

    chain.set_powered(True)
    got = run(driver, 10, clock)
    assert driver.chain is not None and len(driver.chain) == 3
    assert driver.last_health.reinitialised and driver.last_health.chips_after == 3
    assert got and all(n.job.ref == "recovery" for n in got)  # last job resent


class _Unpluggable(SimChainTransport):
    """The simulated wire, with the device able to vanish (no way to get it back)."""

    gone = False

    def read(self, timeout: float) -> bytes:
        if self.gone:
            raise DeviceGone("pulled")
        return super().read(timeout)


def test_device_gone_without_reopen_is_left_to_the_caller():
    driver, _chain, _clock = make(_Unpluggable)
    driver.init(3)
    driver.transport.gone = True
    with pytest.raises(DeviceGone):
        driver.service(timeout=0.1)
    assert driver.counters.device_lost == 1

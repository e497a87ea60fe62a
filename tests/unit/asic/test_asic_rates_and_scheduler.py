"""Hashrate windows and job pacing on a fake clock."""

from __future__ import annotations

import pytest

from drivers.asic.bm13xx.chips import get_chip
from drivers.asic.chain import Chain
from drivers.asic.scheduler import JobScheduler, exhaustion_time
from drivers.asic.stats import RateWindows
from tests.unit.asic.asic_simlink import FakeClock


def test_rate_windows_steady_stream():
    r = RateWindows(started_at=0.0)
    for t in range(3600):
        r.add(float(t), 100.0)
    now = 3600.0
    assert r.rate(now, 60) == pytest.approx(100.0, rel=0.02)
    assert r.rate(now, 600) == pytest.approx(100.0, rel=0.01)
    assert r.rate(now, 3600) == pytest.approx(100.0, rel=0.01)


def test_rate_windows_forget_old_work():
    r = RateWindows(started_at=0.0)
    for t in range(600):
        r.add(float(t), 50.0)
    # silence for two minutes: the 1 m window empties, the 10 m and 1 h remember
    now = 720.0
    assert r.rate(now, 60) == 0.0
    assert r.rate(now, 600) == pytest.approx(50.0 * 480 / 600, rel=0.03)
    assert r.rate(now, 3600) == pytest.approx(50.0 * 600 / 720, rel=0.01)


def test_rate_windows_young_counter_uses_elapsed_time():
    r = RateWindows(started_at=10.0)
    r.add(15.0, 1000.0)
    assert r.rate(20.0, 3600) == pytest.approx(100.0)
    assert r.rate(10.0, 60) == 0.0
    r.restart(30.0)
    assert r.rate(40.0, 60) == 0.0


def test_chain_nonce_hashrate_and_attribution():
    spec = get_chip("BM1370")
    chain = Chain(spec, 4, now=0.0)
    assert chain.address_interval == 64
    assert chain.chip_for_address(0).index == 0
    assert chain.chip_for_address(130).index == 2
    assert chain.chip_for_address(255).index == 3
    # 1 nonce per second at difficulty 256 = 256 * 2^32 H/s (about 1.1 TH/s)
    chip = chain.chips[1]
    for t in range(1, 121):
        chain.record_nonce(chip, float(t), True, 256)
    chain.record_nonce(chip, 120.5, False, 256)
    assert chain.hashrate(120.5, 60) == pytest.approx(256 * 2**32, rel=0.03)
    assert chip.error_rate == pytest.approx(1 / 121)
    snap = chain.snapshot(120.5)
    assert snap["per_chip"][1]["hw_errors"] == 1 and snap["chips"] == 4


def test_counter_wraparound():
    from drivers.asic.bm13xx.frames import RegisterReply

    spec = get_chip("BM1366")
    chain = Chain(spec, 1, now=0.0)
    chain.record_register(RegisterReply(0xFFFFFFF0, 0, 0x8C), 0.0)
    chain.record_register(RegisterReply(0x00000010, 0, 0x8C), 10.0)
    assert chain.hashrate(10.0, 60, "counters") == pytest.approx(0x20 * 2**32 / 10)
    # a reply from an address no chip owns is ignored
    chain2 = Chain(spec, 2, now=0.0)
    assert chain2.record_register(RegisterReply(1, 5, 0x8C), 1.0) is None


def test_silent_chips():
    chain = Chain(get_chip("BM1368"), 3, now=0.0)
    chain.chips[0].last_seen = 25.0
    chain.chips[2].last_seen = 5.0
    assert [c.index for c in chain.silent_chips(30.0, 20.0)] == [1, 2]


def test_exhaustion_time():
    # BM1397 at 425 MHz: 2^32 x 4 midstates / 285.6 GH/s
    spec = get_chip("BM1397")
    rate = spec.expected_hashrate(425)
    assert rate == pytest.approx(425e6 * 672)
    assert exhaustion_time(rate, 4) == pytest.approx(2**34 / rate)


def test_scheduler_interval_from_hashrate_and_rolling():
    clock = FakeClock(now=0.0)
    s = JobScheduler(clock, max_interval=2.0)
    bm1397 = get_chip("BM1397")
    # midstate chip: 4 versions per job -> sub-second interval
    interval = s.configure(bm1397.expected_hashrate(425, 1), 4, 152, 3_125_000)
    assert interval == pytest.approx(0.5 * 2**34 / (425e6 * 672))
    # a faster chain needs work more often
    assert s.configure(bm1397.expected_hashrate(425, 16), 4, 152, 3_125_000) < interval
    # BM1370 rolling 2^16 versions never runs dry: the refresh cap applies
    bm1370 = get_chip("BM1370")
    assert s.configure(bm1370.expected_hashrate(525, 1), 1 << 16, 88, 1_000_000) == 2.0
    # a huge chain on a slow UART is limited by the bytes a job takes on the wire
    assert s.configure(1e18, 1, 88, 115_200) == pytest.approx(2 * 88 * 10 / 115_200)


def test_scheduler_due_on_fake_clock():
    clock = FakeClock(now=0.0)
    s = JobScheduler(clock, max_interval=1.0)
    s.configure(1e9, 1 << 16)
    assert s.due()
    s.mark_sent()
    clock.advance(0.4)
    assert not s.due() and s.time_until_due() == pytest.approx(0.6)
    clock.advance(0.6)
    assert s.due()


def test_driver_keeps_chips_fed_on_schedule():
    from drivers.asic.driver import AsicDriver
    from drivers.asic.job import MiningJob
    from drivers.sim.chips import SimChain
    from tests.unit.asic.asic_simlink import SimChainTransport

    clock = FakeClock()
    sim = SimChain("BM1397", 1, hashrate_hps=0)
    driver = AsicDriver(
        SimChainTransport(sim, clock), "BM1397", clock, sleep=clock.sleep, enum_timeout=0.2
    )
    driver.init(1)
    interval = driver.scheduler.interval
    assert 0.005 < interval < 0.1
    made = []

    def source():
        job = MiningJob(
            0x20000000, bytes(32), len(made).to_bytes(32, "little"), 1, 0x1D00FFFF, 0x1FFFE000
        )
        made.append(job)
        return job

    start = clock()
    while clock() - start < 1.0:
        driver.service(source, timeout=0.01)
    expected = 1.0 / interval
    assert expected * 0.6 <= len(made) <= expected * 1.1 + 1
    assert sim.stats.jobs_rx == len(made)

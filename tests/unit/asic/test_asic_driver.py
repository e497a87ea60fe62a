"""AsicDriver against the project's simulated chain (in-process, fake time)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from drivers.asic.bm13xx import frames
from drivers.asic.bm13xx.chips import get_chip
from drivers.asic.bm13xx.pll import RAMP_START_MHZ, ramp_steps
from drivers.asic.driver import AsicDriver
from drivers.asic.errors import ConfigError, EnumerationError
from drivers.asic.job import MiningJob
from drivers.sim.chips import SimChain
from tests.unit.asic.asic_simlink import FakeClock, SimChainTransport

MODELS = ("BM1366", "BM1368", "BM1370", "BM1397")

# Bitcoin's genesis block header (mainnet).
GENESIS_MERKLE = bytes.fromhex("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b")[
    ::-1
]
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
GENESIS_NONCE = 2083236893


def genesis_job(mask: int = 0) -> MiningJob:
    return MiningJob(1, bytes(32), GENESIS_MERKLE, 1231006505, 0x1D00FFFF, mask, ref="genesis")


def make(model, chips=1, hashrate=0.0, sim_diff=None, **kw):
    clock = FakeClock()
    chain = SimChain(model, chips, hashrate_hps=hashrate, sim_ticket_difficulty=sim_diff, seed=1)
    transport = SimChainTransport(chain, clock)
    kw.setdefault("enum_timeout", 0.5)
    driver = AsicDriver(transport, model, clock, sleep=clock.sleep, **kw)
    return driver, chain, transport, clock


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("chips", [1, 3, 8])
def test_init_enumerates_addresses_and_configures(model, chips):
    driver, sim, transport, clock = make(model, chips)
    chain = driver.init(chip_count_expected=chips)
    spec = get_chip(model)
    assert len(chain) == chips
    assert transport.resets == 1
    interval = 256 // chips
    assert [c.address for c in sim.chips] == [i * interval for i in range(chips)]
    assert [c.address for c in chain.chips] == [i * interval for i in range(chips)]
    for chip in sim.chips:
        assert chip.frequency_mhz == pytest.approx(spec.default_mhz)
        assert chip.ticket_difficulty == 256
        assert chip.baud == pytest.approx(spec.fast_baud, rel=0.03)
        if spec.rolls_version:
            assert chip.version_mask == 0x1FFFE000
    # host and chips in step: host switched only after the chips were told
    assert transport.bauds[-1] == spec.fast_baud == driver.baud
    assert transport.garbled_bytes == 0
    # PLL ramp: first setting, then 6.25 MHz steps 100 ms apart
    steps = ramp_steps(RAMP_START_MHZ, spec.default_mhz)
    pll_writes = [w for w in transport.writes if w[2] == 0x51 and w[5] == 0x08]
    assert len(pll_writes) == 1 + len(steps)
    assert clock.sleeps == [0.1] * len(steps) + [0.05]  # ramp, then baud settle


def test_baud_mismatch_would_garble():
    """Switching the host first (out of step) loses the chain: the check has teeth."""
    driver, _sim, transport, _ = make("BM1370", 2)
    driver.init(2)
    transport.set_baud(115_200)  # host falls back without telling the chips
    driver.request_counters()
    assert driver.poll(0.2) == []
    assert transport.garbled_bytes > 0


def test_reinit_drops_back_to_default_baud():
    driver, _sim, transport, _ = make("BM1397", 2)
    driver.init(2)
    driver.init(2)
    assert transport.bauds == [115_200, 3_125_000, 115_200, 3_125_000]
    assert transport.garbled_bytes == 0


def test_enumeration_errors():
    driver, *_ = make("BM1370", 2)
    with pytest.raises(EnumerationError, match="expected 3"):
        driver.init(chip_count_expected=3)
    clock = FakeClock()
    wrong = SimChainTransport(SimChain("BM1368", 1), clock)
    with pytest.raises(EnumerationError, match="0x1368"):
        AsicDriver(wrong, "BM1370", clock, sleep=clock.sleep, enum_timeout=0.2).init()
    off = SimChain("BM1370", 1)
    off.set_powered(False)
    with pytest.raises(EnumerationError, match="no BM1370"):
        AsicDriver(SimChainTransport(off, clock), "BM1370", clock, enum_timeout=0.2).init()


@pytest.mark.parametrize("model", MODELS)
def test_genesis_nonce_verifies_and_flipped_is_hw_error(model):
    driver, *_ = make(model, 2)
    chain = driver.init(2)
    spec = driver.spec
    job_id = driver.send_job(genesis_job())
    reply = frames.nonce_reply(spec, GENESIS_NONCE, job_id)
    (nonce,) = driver.feed(reply)
    assert nonce.hash[::-1].hex() == GENESIS_HASH
    assert nonce.version == 1 and nonce.nonce == GENESIS_NONCE
    assert nonce.is_block and nonce.meets_share_target and nonce.job.ref == "genesis"
    assert nonce.header()[-4:] == struct.pack("<I", GENESIS_NONCE)
    owner = chain.chip_for_address((int.from_bytes(nonce.header()[-4:], "big") >> 17) & 0xFF)
    assert nonce.chip_index == owner.index and owner.nonces == 1
    flipped = GENESIS_NONCE ^ 1
    assert driver.feed(frames.nonce_reply(spec, flipped, job_id)) == []
    bad_owner = chain.chip_for_address(
        (int.from_bytes(struct.pack("<I", flipped), "big") >> 17) & 0xFF
    )
    assert bad_owner.hw_errors == 1
    assert driver.counters.hw_errors == 1 and driver.counters.nonces_valid == 1


def test_stale_duplicate_and_foreign_version_bits():
    driver, *_ = make("BM1370", 1)
    driver.init(1)
    spec = driver.spec
    old = driver.send_job(genesis_job(0x1FFFE000))
    good = frames.nonce_reply(spec, GENESIS_NONCE, old)
    assert len(driver.feed(good)) == 1
    assert driver.feed(good) == []  # duplicate: counted, not re-submitted
    assert driver.counters.duplicate_nonces == 1
    new = driver.new_block(genesis_job(0x00006000))
    assert driver.feed(good) == []  # job cleared by the new block: stale, not the chip's fault
    assert driver.counters.stale_nonces == 1 and driver.counters.hw_errors == 0
    # version bits outside the job's mask are a hardware error
    assert driver.feed(frames.nonce_reply(spec, GENESIS_NONCE, new, version_bits=1 << 20)) == []
    assert driver.counters.hw_errors == 1


def test_bm1397_midstate_index_selects_version():
    driver, *_ = make("BM1397", 1)
    driver.init(1)
    jid = driver.send_job(genesis_job(0x1FFFE000))
    spec = driver.spec
    ok = driver.feed(frames.nonce_reply(spec, GENESIS_NONCE, jid, sub=0))
    assert [n.version for n in ok] == [1]
    # the same nonce claimed for midstate 1 (version 0x2001) does not hash: HW error
    assert driver.feed(frames.nonce_reply(spec, GENESIS_NONCE, jid, sub=1)) == []
    assert driver.counters.hw_errors == 1


@pytest.mark.parametrize("model", MODELS)
def test_simulated_chain_nonces_verify_with_version_rolling(model):
    driver, _sim, _transport, _clock = make(
        model, 2, hashrate=60_000, sim_diff=2**-20, verify_difficulty=2**-20
    )
    driver.init(2)
    job = MiningJob(
        0x20000000, bytes(range(32)), bytes(range(32, 64)), 1700000000, 0x1703A30C, 0x1FFFE000
    )
    driver.send_job(job)
    got = []
    for _ in range(20):
        got += driver.poll(0.1)
    assert len(got) >= 10
    assert driver.counters.hw_errors == 0
    assert {n.chip_index for n in got} == {0, 1}
    for n in got:
        assert n.hash == hashlib.sha256(hashlib.sha256(n.header()).digest()).digest()
        assert n.version & ~0x1FFFE000 == 0x20000000
    assert len({n.version for n in got}) > 1  # rolled versions are visible


def test_set_frequency_ramps_and_reaches_chips():
    driver, sim, transport, clock = make("BM1368", 2)
    driver.init(2)
    clock.sleeps.clear()
    n_writes = len(transport.writes)
    driver.set_frequency(450)
    assert all(c.frequency_mhz == pytest.approx(450) for c in sim.chips)
    steps = ramp_steps(490, 450)
    pll = [w for w in transport.writes[n_writes:] if w[5] == 0x08]
    assert len(pll) == len(steps) == 7
    assert clock.sleeps == [0.1] * (len(steps) - 1)  # 100 ms between consecutive settings
    assert all(c.frequency_mhz == 450 for c in driver.chain.chips)
    with pytest.raises(ConfigError):
        driver.set_frequency(10_000)
    assert all(c.frequency_mhz == pytest.approx(450) for c in sim.chips)


@pytest.mark.parametrize("model", MODELS)
def test_counters_drive_hashrate(model):
    driver, _sim, _transport, clock = make(model, 2, counter_interval=5.0)
    driver.init(2)
    driver.send_job(genesis_job())
    for _ in range(40):
        driver.service(timeout=1.0)
    chain = driver.chain
    expected = chain.expected_hashrate()
    assert chain.hashrate(clock(), 60, "counters") == pytest.approx(expected, rel=0.05)


def test_silent_chip_is_reported_and_chain_reinitialised():
    driver, sim, _transport, _clock = make("BM1370", 3, silence_timeout=12.0, counter_interval=3.0)
    driver.init(3)
    driver.send_job(genesis_job())
    for _ in range(10):
        driver.service(timeout=1.0)
    assert driver.counters.reinits == 0
    sim.faults.dead_chips.add(1)
    for _ in range(30):
        driver.service(timeout=1.0)
    assert driver.counters.silent_chip_events >= 1 and driver.counters.reinits >= 1
    assert len(driver.chain) == 2  # the dead chip no longer enumerates
    assert driver.last_health.silent_chips == (1,)
    assert driver.last_health.reinitialised and driver.last_health.chips_after == 2
    # the last job was resent after re-init: the two live chips keep hashing
    assert all(c.job is not None for i, c in enumerate(sim.chips) if i != 1)


def test_corrupted_replies_are_dropped_and_counted():
    driver, sim, _transport, _clock = make(
        "BM1366", 2, hashrate=40_000, sim_diff=2**-20, verify_difficulty=2**-20
    )
    driver.init(2)
    driver.send_job(genesis_job(0x1FFFE000))
    sim.faults.crc_error_rate = 0.3
    sim.faults.byte_drop_rate = 0.01
    got = []
    for _ in range(30):
        got += driver.poll(0.1)
    stats = driver.stats()
    assert stats["frames_dropped"] > 0
    assert len(got) > 0


def test_send_job_requires_init():
    driver, *_ = make("BM1370", 1)
    with pytest.raises(ConfigError):
        driver.send_job(genesis_job())


def test_bip323_mask_is_clamped_to_what_the_chip_rolls():
    driver, sim, *_ = make("BM1370", 1)
    driver.init(1)
    driver.send_job(genesis_job(0x1FFFFFE0))
    assert driver.version_mask == 0x1FFFE000
    assert sim.chips[0].version_mask == 0x1FFFE000
    driver.send_job(genesis_job(0))  # a pool that forbids rolling: chips stop rolling
    assert sim.chips[0].version_mask == 0


def test_stats_are_plain_data():
    import json

    driver, *_ = make("BM1366", 2)
    driver.init(2)
    driver.send_job(genesis_job())
    driver.service(timeout=1.0)
    stats = json.loads(json.dumps(driver.stats()))
    assert stats["chain"]["chips"] == 2 and len(stats["chain"]["per_chip"]) == 2
    assert all(c["chip_error_counter"] is not None for c in stats["chain"]["per_chip"])
    assert stats["jobs_sent"] == 1


def test_read_register_all_and_one_chip_keeps_nonces():
    from drivers.asic.bm13xx.pll import encode_pll, find_pll
    from drivers.asic.errors import ChipTimeoutError

    driver, sim, _t, clock = make(
        "BM1370", 3, hashrate=60_000, sim_diff=2**-20, verify_difficulty=2**-20
    )
    driver.init(3)
    spec = driver.spec
    pll = int.from_bytes(encode_pll(spec, find_pll(spec, spec.default_mhz)), "big")
    assert driver.read_register(0x08) == {0: pll, 1: pll, 2: pll}
    assert driver.read_register(0x00, chip_index=2) == {2: spec.chip_id_value}
    driver.send_job(genesis_job(0x1FFFE000))
    for _ in range(10):
        clock.advance(0.2)  # the chips hash meanwhile; their nonces precede the answers
        driver.read_register(0x8C, timeout=0.2)
    assert len(driver.poll()) > 0  # nonces that arrived during the reads were kept
    sim.faults.dead_chips.update({0, 1, 2})
    with pytest.raises(ChipTimeoutError):
        driver.read_register(0x08, timeout=0.2)


def test_counter_jumps_are_not_believed():
    from drivers.asic.bm13xx.frames import RegisterReply
    from drivers.asic.chain import Chain

    chain = Chain(get_chip("BM1366"), 1, now=0.0)
    chip = chain.chips[0]
    chip.frequency_mhz = 485.0
    per_s = get_chip("BM1366").expected_hashrate(485.0) / 2**32
    chain.record_register(RegisterReply(1000, 0, 0x8C), 0.0)
    chain.record_register(RegisterReply(1000 + round(10 * per_s), 0, 0x8C), 10.0)
    chain.record_register(RegisterReply(5, 0, 0x8C), 20.0)  # chip was reset: wraps to huge
    chain.record_register(RegisterReply(5 + round(10 * per_s), 0, 0x8C), 30.0)
    assert chip.counter_glitches == 1
    assert chain.hashrate(30.0, 60, "counters") == pytest.approx(
        get_chip("BM1366").expected_hashrate(485.0) * 2 / 3, rel=0.01
    )

"""Nonces from the simulated chips are real solutions, re-hashed here with hashlib."""

from __future__ import annotations

import hashlib

import pytest

from drivers import sha256_state
from drivers.sha256_state import SHA256_IV, compress
from drivers.sim import testing as host
from drivers.sim.chips import COUNTER_UNIT, SimChain
from drivers.sim.hasher import MidstateScanner
from protocols.stratum_v1.work import difficulty_to_target

SIM_DIFFICULTY = 2e-6  # ~1 hit per 8.6k hashes
VERSION_MASK = 0x1FFFE000
# A regtest-like header: version, prev hash, merkle root, time, bits, (nonce).
HEADER = (
    (0x20000000).to_bytes(4, "little")
    + bytes.fromhex("5a" * 16 + "00" * 16)
    + hashlib.sha256(b"merkle").digest()
    + (1_764_000_000).to_bytes(4, "little")
    + bytes.fromhex("ffff7f20")
    + bytes(4)
)


def dsha(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(hashlib.sha256(data).digest()).digest(), "little")


def enumerated(model: str, n: int, **kw) -> SimChain:
    chain = SimChain(model, n, sim_ticket_difficulty=SIM_DIFFICULTY, **kw)
    chain.feed(host.chain_inactive())
    for i in range(n):
        chain.feed(host.set_address(i * (256 // n)))
    return chain


def run(chain: SimChain, seconds: float, step: float = 0.1, start: float = 0.0) -> None:
    t = start
    chain.advance(t)
    while t < start + seconds - 1e-9:
        t += step
        chain.advance(t)


def version_of(reply, base_version: int) -> int:
    return base_version | (reply.version_bits << 13)


@pytest.mark.parametrize("model", ["BM1366", "BM1368", "BM1370"])
def test_bm136x_nonces_solve_the_header(model):
    chain = enumerated(model, 4, hashrate_hps=100_000)
    chain.feed(host.write_register(0xA4, 0x9000FFFF))
    chain.feed(host.bm136x_job(0x18, HEADER))
    run(chain, 1.0)
    replies = host.parse_replies(chain.take_output(), 11)
    assert len(replies) >= 3  # ~11 expected
    target = difficulty_to_target(SIM_DIFFICULTY)
    cores = chain.model.nonce_cores
    for r in replies:
        assert r.crc_ok and r.is_nonce
        full = host.header_with_nonce(HEADER, r.nonce_bytes, version_of(r, 0x20000000))
        assert dsha(full) <= target
        assert r.chip_address in (0, 64, 128, 192)
        assert r.core_id < cores
        assert version_of(r, 0x20000000) & ~VERSION_MASK == 0x20000000
    # Job id echoed per the model's encoding.
    if model == "BM1366":
        assert {r.byte7 & 0xF8 for r in replies} == {0x18}
    else:
        assert {(r.byte7 & 0xF0) >> 1 for r in replies} == {0x18}
    # Every chip found something, each in its own slice of the nonce space.
    assert len({r.chip_address for r in replies}) >= 2


def test_bm1370_results_show_rolled_versions():
    chain = enumerated("BM1370", 1, hashrate_hps=200_000)
    chain.feed(host.write_register(0xA4, 0x9000FFFF))
    chain.feed(host.bm136x_job(0x30, HEADER))
    run(chain, 1.0)
    replies = host.parse_replies(chain.take_output(), 11)
    rolled = {r.version_bits for r in replies}
    assert len(rolled) >= 3 and rolled != {0}
    for r in replies:
        full = host.header_with_nonce(HEADER, r.nonce_bytes, version_of(r, 0x20000000))
        assert dsha(full) <= difficulty_to_target(SIM_DIFFICULTY)


def test_without_version_mask_no_rolling():
    chain = enumerated("BM1370", 1, hashrate_hps=200_000)
    chain.feed(host.bm136x_job(0x30, HEADER))
    run(chain, 0.5)
    replies = host.parse_replies(chain.take_output(), 11)
    assert replies and {r.version_bits for r in replies} == {0}


def test_bm1397_midstates_and_indices():
    versions = host.rolled_versions(0x20000000, VERSION_MASK, 4)
    chain = enumerated("BM1397", 2, hashrate_hps=100_000)
    chain.feed(host.bm1397_job(0x0C, HEADER, versions))
    run(chain, 1.2)
    replies = host.parse_replies(chain.take_output(), 9)
    assert len(replies) >= 4
    indices = set()
    for r in replies:
        assert r.crc_ok and r.is_nonce
        assert r.byte7 & 0xFC == 0x0C
        index = r.byte7 & 0x03
        indices.add(index)
        full = host.header_with_nonce(HEADER, r.nonce_bytes, versions[index])
        assert dsha(full) <= difficulty_to_target(SIM_DIFFICULTY)
        assert r.chip_address in (0, 128)
    assert len(indices) >= 2


def test_bm1397_reference_job_frame_from_esp_miner():
    """A BM1397 job frame captured from ESP-Miner's test data; its header is known."""
    frame = bytes.fromhex(
        "55AA21960404000000 0001DD0517D88B6564C604A8464D3185F25F7D5DE0E3591741CB21CAE1"
        "1574DDD65D490D3D68739F8A52EADF91".replace(" ", "")
        + "00" * 96
        + "6B1D"
    )
    prev = bytes.fromhex("bf44fd3513dc7b837d60e5c628b572b448d204a8000007490000000000000000")
    prev = b"".join(prev[i : i + 4][::-1] for i in range(0, 32, 4))  # stratum -> header order
    header = (
        bytes.fromhex("04000020")
        + prev
        + bytes.fromhex("cd1be82132ef0d12053dcece1fa0247fcfdb61d4dbd3eb32ea9ef9b4c604a846")
        + bytes.fromhex("d88b6564")
        + bytes.fromhex("01dd0517")
    )
    chain = enumerated("BM1397", 1, hashrate_hps=100_000)
    chain.feed(frame)
    assert chain.stats.jobs_rx == 1 and chain.stats.crc_errors_rx == 0
    run(chain, 1.0)
    replies = [r for r in host.parse_replies(chain.take_output(), 9) if r.byte7 & 3 == 0]
    assert replies
    for r in replies:
        assert r.byte7 & 0xFC == 0x04
        assert dsha(header + r.nonce_bytes) <= difficulty_to_target(SIM_DIFFICULTY)


def test_new_job_replaces_old():
    chain = enumerated("BM1370", 1, hashrate_hps=200_000)
    chain.feed(host.bm136x_job(0x18, HEADER))
    run(chain, 0.3)
    chain.take_output()
    other = HEADER[:4] + bytes(32) + HEADER[36:]
    chain.feed(host.bm136x_job(0x30, other))
    run(chain, 0.6, start=0.3)
    replies = host.parse_replies(chain.take_output(), 11)
    assert replies
    assert {(r.byte7 & 0xF0) >> 1 for r in replies} == {0x30}
    for r in replies:
        assert dsha(host.header_with_nonce(other, r.nonce_bytes)) <= difficulty_to_target(
            SIM_DIFFICULTY
        )


def test_hash_budget_is_respected_and_idle_costs_nothing():
    chain = enumerated("BM1370", 2, hashrate_hps=50_000)
    run(chain, 1.0)
    assert chain.stats.real_hashes == 0  # no job, no hashing
    chain.feed(host.bm136x_job(0x18, HEADER))
    run(chain, 1.0, start=1.0)
    assert chain.stats.real_hashes == pytest.approx(50_000, abs=2)
    # A long pause is not caught up in one burst.
    chain.advance(100.0)
    assert chain.stats.real_hashes <= 50_000 + 0.25 * 50_000 + 2


def test_faster_chip_gets_more_of_the_budget():
    chain = enumerated("BM1370", 2, hashrate_hps=60_000)
    chain.feed(host.write_register(0x08, 0x40A80230, address=0))  # 525 MHz
    chain.feed(host.write_register(0x08, 0x40A80260, address=128))  # 525/7*4... slower
    chain.feed(host.bm136x_job(0x18, HEADER))
    run(chain, 1.0)
    fast, slow = chain.chips
    assert fast.frequency_mhz > slow.frequency_mhz
    assert fast.real_hashes > slow.real_hashes


def test_ticket_mask_register_sets_difficulty_when_no_sim_override():
    chain = SimChain("BM1370", 1)
    chain.feed(host.write_register(0x14, 0x000000FF))
    chip = chain.chips[0]
    assert chain.effective_ticket_difficulty(chip) == 256
    assert chain._target_for(chip) == difficulty_to_target(256)
    sim = SimChain("BM1370", 1, sim_ticket_difficulty=0.001)
    assert sim.effective_ticket_difficulty(sim.chips[0]) == 0.001


def test_counters_follow_modelled_hashrate():
    chain = enumerated("BM1370", 1, hashrate_hps=1000)
    chain.feed(host.bm136x_job(0x18, HEADER))
    run(chain, 2.0)
    chip = chain.chips[0]
    expected = 525e6 * 2040 * 2.0 / COUNTER_UNIT
    chain.feed(host.read_register(0x8C, address=0))
    chain.feed(host.read_register(0x88, address=0))
    total, domain0 = host.parse_replies(chain.take_output(), 11)
    assert total.value == pytest.approx(expected, abs=1)
    assert domain0.value == pytest.approx(expected / 4, abs=1)
    # Doubling the clock doubles the counter rate.
    chain.feed(host.write_register(0x08, pll_for(chip, 1050.0)))
    run(chain, 2.0, start=2.0)
    chain.feed(host.read_register(0x8C, address=0))
    (again,) = host.parse_replies(chain.take_output(), 11)
    assert again.value - total.value == pytest.approx(2 * expected, rel=0.02)


def pll_for(chip, mhz: float) -> int:
    from drivers.sim.chips import pll_value

    return pll_value(chip.model, mhz)


def test_bm1397_hashrate_register():
    chain = enumerated("BM1397", 1, hashrate_hps=1000)
    chain.feed(host.bm1397_job(0x04, HEADER))
    run(chain, 0.5)
    chain.feed(host.read_register(0x04, address=0))
    (reply,) = host.parse_replies(chain.take_output(), 9)
    assert reply.value == int(chain.chips[0].frequency_mhz * 1e6 * 672 / 2**20)


def test_hardware_errors_are_wrong_nonces_with_right_address():
    chain = enumerated("BM1370", 2, hashrate_hps=100_000, seed=7)
    for chip in chain.chips:
        chip.error_rate = 1.0
    chain.feed(host.bm136x_job(0x18, HEADER))
    run(chain, 1.0)
    replies = host.parse_replies(chain.take_output(), 11)
    assert replies
    for r in replies:
        assert r.crc_ok and r.chip_address in (0, 128)
        full = host.header_with_nonce(HEADER, r.nonce_bytes, version_of(r, 0x20000000))
        assert dsha(full) > difficulty_to_target(SIM_DIFFICULTY)
    assert chain.stats.hw_errors_tx == len(replies)
    chain.feed(host.read_register(0x4C, address=0))
    (errors,) = host.parse_replies(chain.take_output(), 11)
    assert errors.value > 0


def test_unpowered_chain_is_silent_and_comes_back_reset():
    chain = enumerated("BM1370", 2)
    chain.set_powered(False)
    chain.feed(host.read_register(0x00))
    assert chain.take_output() == b""
    chain.set_powered(True)
    assert [c.address for c in chain.chips] == [0, 0]
    chain.feed(host.read_register(0x00))
    assert len(chain.take_output()) == 22


def test_midstate_scanner_matches_hashlib_both_ways(monkeypatch):
    state = compress(SHA256_IV, HEADER[:64])
    scanner = MidstateScanner(state, HEADER[64:76])
    nonce = bytes.fromhex("01020304")
    expected = hashlib.sha256(hashlib.sha256(HEADER[:76] + nonce).digest()).digest()
    assert scanner.digest(nonce) == expected
    monkeypatch.setattr(sha256_state, "_OPENSSL_TRANSFORM", None)
    assert MidstateScanner(state, HEADER[64:76]).digest(nonce) == expected
    assert not sha256_state.openssl_available()


def test_owned_nonces_walk_cores_first_with_address_bits():
    from drivers.sim.hasher import owned_nonces

    addr = 5 << 17
    assert owned_nonces(0, 3, 2, 5) == [addr, (1 << 25) | addr, addr | 1]
    assert owned_nonces(7, 1, 128, 0) == [7 << 25]

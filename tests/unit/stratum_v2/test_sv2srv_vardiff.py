"""Vardiff: hashrate-based starting target and retargeting toward shares/min."""

from __future__ import annotations

from appliance.stratum_v2.vardiff import MAX_TARGET, Vardiff, target_from_hashrate


def test_initial_target_formula() -> None:
    # 1 TH/s at 6 shares/min: one share per 10 s, i.e. 1e13 hashes per share.
    hs = 10**13
    assert target_from_hashrate(1e12, 6.0) == ((1 << 256) - hs) // (hs + 1)
    assert target_from_hashrate(0.0, 6.0) == MAX_TARGET
    v = Vardiff.start(1e12, 6.0, now=0.0, max_target=1 << 200)
    assert v.target == 1 << 200  # clamped to the miner's maximum target


def test_too_many_shares_lower_the_target_early() -> None:
    v = Vardiff.start(1e6, 6.0, now=0.0, interval=60.0)
    start = v.target
    new = None
    for i in range(24):  # four times the expected count within 6 s: 40x too fast
        new = v.on_share(now=0.25 * (i + 1)) or new
    assert new is not None and new == v.target
    assert start / 60 < new < start / 20  # about 40x harder


def test_on_target_rate_keeps_target_and_silence_eases_it() -> None:
    v = Vardiff.start(1e6, 6.0, now=0.0, interval=60.0)
    start = v.target
    for i in range(6):
        assert v.on_share(now=10.0 * i + 1) is None
    assert v.poll(now=60.0) is None and v.target == start
    assert v.poll(now=119.0) is None  # interval not over
    assert v.poll(now=120.0) == min(MAX_TARGET, start * 2 + 1)


def test_hostile_hashrates_give_valid_targets() -> None:
    for rate in (float("nan"), float("-inf"), -5.0, 0.0):
        assert target_from_hashrate(rate, 6.0) == MAX_TARGET
    assert target_from_hashrate(float("inf"), 6.0) == 1
    assert 1 <= target_from_hashrate(3.4e38, 6.0) < MAX_TARGET  # F32 max

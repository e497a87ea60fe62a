"""Difficulty rules: retarget clamps, testnet min-difficulty (20-minute) rule, BIP94."""

from __future__ import annotations

import dataclasses

import pytest

from node.chain import errors as E
from node.chain import params as P
from node.chain.errors import ConsensusError
from node.chain.headers import HeaderEntry, HeaderTree, next_work_required
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.pow import bits_to_target, target_to_bits
from tests.helpers.headerchain import extend, mine

NOW = 2_000_000_000
# Cheap-but-real PoW with retargeting every 16 blocks of 60 s. The limit keeps
# target * 4 * timespan below 2^256, so no arith_uint256 wrap-around is involved.
LIMIT = (1 << 244) - 1
LIMIT_BITS = 0x1F0FFFFF
SPACING = 60
TIMESPAN = 16 * SPACING


def _fast_params(name: str, **rules: bool) -> P.ChainParams:
    genesis = mine(b"\x00" * 32, 1_700_000_000, LIMIT_BITS)
    return dataclasses.replace(
        P.REGTEST,
        name=name,
        genesis_bytes=genesis + b"\x00",
        genesis_hash=sha256d(genesis),
        pow_limit=LIMIT,
        pow_no_retargeting=False,
        pow_target_spacing=SPACING,
        pow_target_timespan=TIMESPAN,
        **rules,
    )


FAST = _fast_params("fast")
FAST94 = _fast_params("fast94", pow_allow_min_difficulty_blocks=True, enforce_bip94=True)
FAST_MIN = _fast_params("fastmin", pow_allow_min_difficulty_blocks=True)


def _bits(target: int) -> int:
    return target_to_bits(target)


def _quarter(bits: int) -> int:
    """Bits after a period four times too fast: target * (timespan / 4) / timespan."""
    return _bits(bits_to_target(bits).target * (TIMESPAN // 4) // TIMESPAN)


def _quarter_limit_bits() -> int:
    return _quarter(LIMIT_BITS)


def test_chain_headers_retarget_fast_blocks_raise_difficulty_4x() -> None:
    tree = HeaderTree(FAST)
    chain = extend(tree, tree.genesis, 15, spacing=1)
    assert all(e.bits == LIMIT_BITS for e in chain)
    nxt = tree.next_work_required(chain[-1], chain[-1].time + 1)
    assert nxt == _quarter_limit_bits()
    e16 = extend(tree, chain[-1], 1, spacing=1)[0]
    assert e16.bits == nxt and e16.height == 16
    # bits that ignore the retarget are refused
    with pytest.raises(ConsensusError) as info:
        tree.accept(mine(chain[-1].hash, chain[-1].time + 1, LIMIT_BITS, tag=9), NOW)
    assert info.value.reason == E.BAD_DIFFBITS and info.value.height == 16


def test_chain_headers_retarget_slow_blocks_capped_at_pow_limit() -> None:
    tree = HeaderTree(FAST)
    chain = extend(tree, tree.genesis, 15, spacing=5000)
    assert tree.next_work_required(chain[-1], chain[-1].time + 1) == LIMIT_BITS


def _synthetic(params: P.ChainParams, bits_times: list[tuple[int, int]]) -> list[HeaderEntry]:
    """A parent-linked chain without PoW (next_work_required only reads bits/time/ancestry)."""
    out: list[HeaderEntry] = []
    parent = None
    for h, (bits, time) in enumerate(bits_times):
        e = HeaderEntry(h.to_bytes(32, "little"), b"", h, time, bits, 0, parent=parent)
        e.build_skip()
        out.append(e)
        parent = e
    return out


def test_chain_headers_testnet4_twenty_minute_rule() -> None:
    t4 = P.TESTNET4
    hard = 0x1C3FFFC0
    # heights 0..2016 at hard bits, then a min-difficulty block at 2017
    rows = [(0x1D00FFFF, 1_000_000)] + [(hard, 1_000_000 + 600 * h) for h in range(1, 2018)]
    rows[2017] = (0x1D00FFFF, rows[2016][1] + 1201)
    chain = _synthetic(t4, rows)
    parent = chain[2016]
    # > 20 minutes after the parent: minimum difficulty allowed (and required)
    assert next_work_required(parent, parent.time + 1201, t4) == 0x1D00FFFF
    # exactly 20 minutes is not "more than": the real difficulty stays
    assert next_work_required(parent, parent.time + 1200, t4) == hard
    # after a min-difficulty block, the last non-min-difficulty block's bits apply again
    last = chain[2017]
    assert next_work_required(last, last.time + 60, t4) == hard
    # mainnet has no such exception
    assert next_work_required(parent, parent.time + 100_000, P.MAINNET) == hard


def test_chain_headers_bip94_retarget_base_is_first_block_of_period() -> None:
    # Period 1 (heights 16..31) runs at a quarter of the limit; its last block uses the
    # 20-minute exception. BIP94 retargets from block 16's bits, testnet3 rules from block 31's.
    for params, expect_quarter_again in ((FAST94, True), (FAST_MIN, False)):
        tree = HeaderTree(params)
        chain = extend(tree, tree.genesis, 16, spacing=1)
        q = chain[-1].bits
        assert q == _quarter_limit_bits()
        chain += extend(tree, chain[-1], 14, spacing=1)  # heights 17..30
        # the 20-minute exception inside the period; then back to the real difficulty
        slow = tree.accept(mine(chain[-1].hash, chain[-1].time + 2 * SPACING + 1, LIMIT_BITS), NOW)
        assert slow.height == 31 and slow.bits == LIMIT_BITS
        nxt = tree.next_work_required(slow, slow.time + 1)
        assert nxt == (_quarter(q) if expect_quarter_again else _quarter(LIMIT_BITS))


def test_chain_headers_min_difficulty_walk_back_inside_period() -> None:
    tree = HeaderTree(FAST94)
    chain = extend(tree, tree.genesis, 18, spacing=1)  # up to height 18, quarter bits from 16
    q = chain[-1].bits
    e19 = tree.accept(mine(chain[-1].hash, chain[-1].time + 2 * SPACING + 1, LIMIT_BITS), NOW)
    # a quick block after a min-difficulty one must return to the real difficulty
    with pytest.raises(ConsensusError) as info:
        tree.accept(mine(e19.hash, e19.time + 1, LIMIT_BITS, tag=3), NOW)
    assert info.value.reason == E.BAD_DIFFBITS
    e20 = tree.accept(mine(e19.hash, e19.time + 1, q, tag=4), NOW)
    assert e20.bits == q


def test_chain_headers_bip94_timewarp_on_first_block_of_period() -> None:
    tree = HeaderTree(FAST94)
    chain = extend(tree, tree.genesis, 10, spacing=1)
    chain += extend(tree, chain[-1], 5, spacing=2000)  # heights 11..15, MTP well behind
    parent = chain[-1]
    bits = tree.next_work_required(parent, parent.time - 601)
    with pytest.raises(ConsensusError) as info:
        tree.accept(mine(parent.hash, parent.time - 601, bits), NOW)
    assert info.value.reason == E.TIME_TIMEWARP_ATTACK and info.value.height == 16
    ok = tree.accept(mine(parent.hash, parent.time - 600, bits, tag=1), NOW)
    assert ok.height == 16
    # without BIP94 the same timestamp is fine
    plain = HeaderTree(FAST_MIN)
    pchain = extend(plain, plain.genesis, 10, spacing=1)
    pchain += extend(plain, pchain[-1], 5, spacing=2000)
    p = pchain[-1]
    bits = plain.next_work_required(p, p.time - 601)
    assert plain.accept(mine(p.hash, p.time - 601, bits), NOW).height == 16
    # a non-boundary block may go back further (only MTP applies)
    assert tree.accept(
        mine(ok.hash, ok.time - 601, tree.next_work_required(ok, ok.time - 601)), NOW
    )

"""Low-work header presync (pure state machine) and the header tree's bound on fork entries."""

from __future__ import annotations

import hashlib
import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain.errors import ConsensusError
from node.chain.headers import FORK_HEADERS_FULL, HeaderTree
from node.chain.params import MAINNET, REGTEST
from node.net.headers_presync import (
    COMMITMENT_PERIOD,
    HeadersPresync,
    Phase,
    PresyncError,
    low_work_cap,
    permitted_difficulty_transition,
)
from protocols.bitcoin.hashes import sha256d
from tests.helpers.headerchain import extend, mine

_BITS = REGTEST.pow_limit_bits
_HEADER = struct.Struct("<i32s32sIII")


def chain_from(prev_hash: bytes, prev_time: int, count: int, tag: int = 0) -> list[bytes]:
    """``count`` regtest headers with real PoW on ``prev_hash``."""
    out = []
    for i in range(count):
        raw = mine(prev_hash, prev_time + 600 * (i + 1), _BITS, tag=tag * 1_000_003 + i)
        out.append(raw)
        prev_hash = sha256d(raw)
    return out


def batches(raws: list[bytes], size: int = 2000) -> list[list[bytes]]:
    return [raws[i : i + size] for i in range(0, len(raws), size)]


def test_chain_reaching_threshold_is_redownloaded_then_released() -> None:
    tree = HeaderTree(REGTEST)
    g = tree.genesis
    raws = chain_from(g.hash, g.time, 4500, tag=1)
    threshold = g.chainwork + 4500 * tree.genesis.chainwork  # exactly the chain's work
    sync = HeadersPresync(g, threshold, REGTEST, salt=b"s" * 16, offset=7)
    assert sync.continues(raws[:3]) and sync.continues([]) and not sync.continues(raws[5:6])
    steps = [sync.feed(b, len(b) == 2000) for b in batches(raws)]
    assert [s.request_from for s in steps] == [sha256d(raws[1999]), sha256d(raws[3999]), g.hash]
    assert sync.phase is Phase.REDOWNLOAD and not any(s.release for s in steps)
    released: list[bytes] = []
    for b in batches(raws):
        step = sync.feed(b, len(b) == 2000)
        released += step.release
    assert released == raws and sync.phase is Phase.DONE
    for raw in released:  # the tree takes them as an ordinary chain
        tree.accept(raw, None)
    assert tree.height == 4500


def test_low_work_chain_is_abandoned_without_keeping_headers() -> None:
    g = HeaderTree(REGTEST).genesis
    raws = chain_from(g.hash, g.time, 2500, tag=2)
    sync = HeadersPresync(g, 10**9, REGTEST, salt=b"x" * 16, offset=0)
    assert sync.feed(raws[:2000], True).request_from == sha256d(raws[1999])
    step = sync.feed(raws[2000:], False)
    assert step.abandoned and not step.release and sync.presync_count == 2500
    with pytest.raises(PresyncError):
        sync.feed(raws[:1], False)


def test_redownload_of_other_headers_is_refused() -> None:
    """A peer that presyncs one chain and redownloads another fails a commitment."""
    g = HeaderTree(REGTEST).genesis
    honest = chain_from(g.hash, g.time, COMMITMENT_PERIOD + 10, tag=3)
    fake = chain_from(g.hash, g.time, COMMITMENT_PERIOD + 10, tag=4)
    pos = 5  # commitment height = offset; find a salt where the two differ there
    for i in range(64):
        salt = bytes([i]) * 16
        bit = [hashlib.sha256(salt + sha256d(c[pos - 1])).digest()[0] & 1 for c in (honest, fake)]
        if bit[0] != bit[1]:
            break
    threshold = g.chainwork * (len(honest) + 1)
    sync = HeadersPresync(g, threshold, REGTEST, salt=salt, offset=pos)
    assert sync.feed(honest, False).request_from == g.hash
    with pytest.raises(PresyncError, match="do not match"):
        sync.feed(fake, False)


def test_presync_checks_continuity_and_pow() -> None:
    g = HeaderTree(REGTEST).genesis
    raws = chain_from(g.hash, g.time, 3, tag=5)
    sync = HeadersPresync(g, 10**9, REGTEST, salt=b"a" * 16, offset=0)
    with pytest.raises(PresyncError, match="non-continuous"):
        sync.feed([raws[0], raws[2]], True)
    bad = bytearray(raws[0])
    v, prev, root, t, bits, _ = _HEADER.unpack(bad)
    for n in range(1000):  # a nonce whose hash misses the target
        cand = _HEADER.pack(v, prev, root, t, bits, n)
        if int.from_bytes(sha256d(cand), "little") > REGTEST.pow_limit:
            break
    sync = HeadersPresync(g, 10**9, REGTEST, salt=b"a" * 16, offset=0)
    with pytest.raises(PresyncError, match="high-hash"):
        sync.feed([cand], True)


def test_permitted_difficulty_transition_on_mainnet() -> None:
    bits = 0x1D00FFFF
    interval = MAINNET.difficulty_adjustment_interval
    assert permitted_difficulty_transition(MAINNET, 5, bits, bits)
    assert not permitted_difficulty_transition(MAINNET, 5, bits, 0x1C7FFFFF)
    assert permitted_difficulty_transition(MAINNET, interval, 0x1C7FFFFF, 0x1C3FFFFF)  # 2x harder
    assert not permitted_difficulty_transition(MAINNET, interval, 0x1C7FFFFF, 0x1C0FFFFF)  # 8x
    assert not permitted_difficulty_transition(MAINNET, interval, 0x1B7FFFFF, bits)  # far easier
    assert permitted_difficulty_transition(REGTEST, 5, _BITS, 0x1D00FFFF)  # min-difficulty nets


def test_low_work_cap_follows_blocks_needed() -> None:
    g = HeaderTree(REGTEST).genesis
    assert low_work_cap(g, g.chainwork * 21, 4000) == 4000 + 4 * 20
    assert low_work_cap(g, 0, 10) == 10


def test_tree_bounds_entries_off_the_best_chain() -> None:
    tree = HeaderTree(REGTEST)
    tree.max_fork_entries = 5
    main = extend(tree, tree.genesis, 10, tag=1)
    fork = extend(tree, main[2], 5, tag=2)  # 5 entries off the best chain
    assert tree.fork_entries == 5
    with pytest.raises(ConsensusError) as err:
        extend(tree, fork[-1], 1, tag=3)
    assert err.value.reason == FORK_HEADERS_FULL
    assert len(tree) == 16
    # A header that becomes best is always taken: the fork overtakes the main chain.
    more = extend(tree, main[-1], 1, tag=4)
    assert tree.best is more[-1]


_CHAIN: list[bytes] = []


def _shared_chain() -> list[bytes]:
    if not _CHAIN:
        g = HeaderTree(REGTEST).genesis
        _CHAIN.extend(chain_from(g.hash, g.time, 300, tag=9))
    return _CHAIN


def _split(raws: list[bytes], cuts: list[int]) -> list[list[bytes]]:
    points = sorted({c % len(raws) for c in cuts} | {0, len(raws)})
    return [raws[a:b] for a, b in itertools.pairwise(points) if b > a]


@settings(max_examples=150, deadline=None)
@given(
    length=st.integers(1, 300),
    need=st.integers(1, 300),
    cuts1=st.lists(st.integers(0, 299), max_size=6),
    cuts2=st.lists(st.integers(0, 299), max_size=6),
    period=st.integers(1, 40),
    offset=st.integers(0, 1000),
    buffer=st.integers(0, 120),
)
def test_any_batching_releases_exactly_the_chain_in_order(
    length, need, cuts1, cuts2, period, offset, buffer
) -> None:
    """However the peer splits its answers, a chain reaching the threshold is released whole
    and in order, and one that never reaches it releases nothing."""
    g = HeaderTree(REGTEST).genesis
    raws = _shared_chain()[:length]
    threshold = g.chainwork * (need + 1)  # reached at height ``need``
    sync = HeadersPresync(
        g, threshold, REGTEST, salt=b"p" * 16, offset=offset, period=period, buffer=buffer
    )
    parts = _split(raws, cuts1)
    released: list[bytes] = []
    for i, part in enumerate(parts):
        step = sync.feed(part, i < len(parts) - 1)
        released += step.release
        if sync.phase is not Phase.PRESYNC:
            break
    if need > length:
        assert step.abandoned and not released and sync.presync_count == length
        return
    assert sync.phase is Phase.REDOWNLOAD and sync.presync_count == need and not released
    parts = _split(raws, cuts2)
    for i, part in enumerate(parts):
        step = sync.feed(part, i < len(parts) - 1 or len(part) == 2000)
        released += step.release
        assert sync.buffered <= max(buffer, 0) or sync.phase is Phase.DONE
        if sync.phase is Phase.DONE:
            break
    assert sync.phase is Phase.DONE
    assert released == raws[: len(released)] and len(released) >= need

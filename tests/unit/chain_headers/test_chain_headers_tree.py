"""HeaderTree: Core's header rules with real PoW, forks, failure marking, locators, persistence."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain import errors as E
from node.chain import params as P
from node.chain.errors import ConsensusError
from node.chain.headers import (
    ENTRY_SIZE,
    EntryStatus,
    HeaderEntry,
    HeaderTree,
    check_proof_of_work,
    median_time_past,
    skip_height,
)
from protocols.bitcoin.block import BlockHeader
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.pow import block_work
from tests.helpers.headerchain import extend, mine

REG = P.REGTEST
NOW = REG.genesis_header.time + 10_000_000


def _reject(tree: HeaderTree, raw: bytes, now: int | None = NOW) -> ConsensusError:
    with pytest.raises(ConsensusError) as info:
        tree.accept(raw, now)
    return info.value


def test_chain_headers_linear_chain_work_and_best() -> None:
    tree = HeaderTree(REG)
    entries = extend(tree, tree.genesis, 30)
    tip = entries[-1]
    assert tree.best is tip and tree.height == 30
    assert tip.chainwork == 31 * block_work(0x207FFFFF)
    assert [tree.best_chain_at(h) for h in range(1, 31)] == entries
    assert tree.get(tip.hash) is tip and tip.hash in tree and len(tree) == 31
    assert tip.header.hash == tip.hash and tip.prev_hash == entries[-2].hash
    # accepting a known header returns the same entry, whatever form it comes in
    assert tree.accept(tip.raw, NOW) is tip
    assert tree.accept(BlockHeader.from_bytes(tip.raw), NOW) is tip
    assert tree.accept(bytearray(tip.raw), NOW) is tip


def test_chain_headers_rejections_with_core_reasons() -> None:
    tree = HeaderTree(REG)
    chain = extend(tree, tree.genesis, 12)
    tip = chain[-1]
    t = tip.time + 600
    # unknown parent
    err = _reject(tree, mine(b"\x11" * 32, t, 0x207FFFFF))
    assert err.reason == E.PREV_BLK_NOT_FOUND and not err.header_invalid
    # PoW: hash above target (search a nonce that fails), and bits above the pow limit
    raw = bytearray(mine(tip.hash, t, 0x207FFFFF))
    for nonce in range(1000):
        raw[76:80] = nonce.to_bytes(4, "little")
        if not check_proof_of_work(sha256d(bytes(raw)), 0x207FFFFF, REG):
            break
    assert _reject(tree, bytes(raw)).reason == E.HIGH_HASH
    assert _reject(tree, mine(tip.hash, t, 0x2100FFFF)).reason == E.HIGH_HASH
    # regtest never retargets: other bits are bad-diffbits
    err = _reject(tree, mine(tip.hash, t, 0x1F7FFFFF))
    assert err.reason == E.BAD_DIFFBITS and err.height == 13 and err.header_invalid
    # time must exceed the median of the last 11
    mtp = median_time_past(tip)
    assert _reject(tree, mine(tip.hash, mtp, 0x207FFFFF)).reason == E.TIME_TOO_OLD
    tree.accept(mine(tip.hash, mtp + 1, 0x207FFFFF), NOW)
    # future limit: now + 2 h is fine, one second more is not (and not permanent)
    far = t + 5000
    assert tree.accept(mine(tip.hash, far, 0x207FFFFF, tag=1), far - 7200).height == 13
    err = _reject(tree, mine(tip.hash, far, 0x207FFFFF, tag=2), far - 7201)
    assert err.reason == E.TIME_TOO_NEW and not err.header_invalid
    # now=None skips only the future check
    assert tree.accept(mine(tip.hash, far + 1, 0x207FFFFF, tag=3), None).height == 13
    # BIP34/66/65 are active from height 1 on regtest: versions 1..3 are obsolete
    for version in (1, 2, 3):
        raw = mine(tip.hash, t, 0x207FFFFF, version=version)
        assert _reject(tree, raw).reason == f"bad-version(0x{version:08x})"
    assert tree.accept(mine(tip.hash, t, 0x207FFFFF, version=4), NOW).height == 13


def test_chain_headers_version_rules_follow_activation_heights() -> None:
    params = dataclasses.replace(REG, bip34_height=3, bip66_height=5, bip65_height=7)
    tree = HeaderTree(params)
    parent = tree.genesis
    for height in range(1, 9):
        t = parent.time + 600
        need = 4 if height >= 7 else 3 if height >= 5 else 2 if height >= 3 else 1
        if need > 1:
            err = _reject(tree, mine(parent.hash, t, 0x207FFFFF, version=need - 1))
            assert err.reason == E.bad_version(need - 1) and err.height == height
        parent = tree.accept(mine(parent.hash, t, 0x207FFFFF, version=need), NOW)


def test_chain_headers_fork_choice_and_reorg() -> None:
    tree = HeaderTree(REG)
    base = extend(tree, tree.genesis, 5)[-1]
    a = extend(tree, base, 3, tag=1)
    b = extend(tree, base, 3, tag=2)
    assert tree.best is a[-1]  # equal work: first seen wins
    assert tree.is_on_best_chain(a[0]) and not tree.is_on_best_chain(b[0])
    assert tree.fork_point(a[-1], b[-1]) is base
    assert tree.ancestor(b[-1], 5) is base and tree.ancestor(b[-1], 7) is b[1]
    b += extend(tree, b[-1], 1, tag=3)
    assert tree.best is b[-1]
    assert [tree.best_chain_at(h) for h in range(6, 10)] == b
    assert tree.best_chain_at(10) is None


def test_chain_headers_mark_failed_descendants_and_best() -> None:
    tree = HeaderTree(REG)
    base = extend(tree, tree.genesis, 4)[-1]
    a = extend(tree, base, 4, tag=1)
    b = extend(tree, base, 2, tag=2)
    assert tree.best is a[-1]
    desc = tree.mark_failed(a[1])
    assert set(desc) == {a[2], a[3]}
    assert a[1].status & EntryStatus.FAILED and a[3].status & EntryStatus.FAILED_CHILD
    assert not a[0].failed and not b[1].failed
    assert tree.best is b[-1]  # b (height 6) has more work than a[0] (height 5)
    err = _reject(tree, mine(a[3].hash, a[3].time + 600, 0x207FFFFF))
    assert err.reason == E.BAD_PREVBLK
    err = _reject(tree, a[2].raw)
    assert err.reason == E.DUPLICATE_INVALID
    with pytest.raises(ValueError):
        tree.mark_failed(tree.genesis)


def test_chain_headers_locator_shape() -> None:
    tree = HeaderTree(REG)
    extend(tree, tree.genesis, 100)
    loc = tree.locator()
    heights = [tree.get(h).height for h in loc]
    assert heights[:11] == list(range(100, 89, -1))
    assert heights[11:] == [89, 87, 83, 75, 59, 27, 0]  # Core: step doubles after 11
    assert tree.locator(tree.genesis) == [REG.genesis_hash]


def test_chain_headers_entry_roundtrip_and_rebuild() -> None:
    tree = HeaderTree(REG)
    main = extend(tree, tree.genesis, 20)
    side = extend(tree, main[9], 3, tag=5)
    main[4].status |= EntryStatus.HAVE_DATA | EntryStatus.HAVE_UNDO
    main[4].file_no, main[4].data_pos, main[4].undo_pos, main[4].tx_count = 2, 12345, 678, 9
    tree.mark_failed(side[1])
    records = {e.hash: e.to_bytes() for e in tree.entries()}
    assert all(len(r) == ENTRY_SIZE for r in records.values())
    loaded = [HeaderEntry.from_bytes(r, h) for h, r in reversed(list(records.items()))]
    again = HeaderTree.from_entries(REG, loaded)
    assert again.best.hash == tree.best.hash and len(again) == len(tree)
    e4 = again.get(main[4].hash)
    assert (e4.file_no, e4.data_pos, e4.undo_pos, e4.tx_count) == (2, 12345, 678, 9)
    assert e4.status & EntryStatus.HAVE_DATA
    assert again.get(side[2].hash).failed
    assert again.get(side[2].hash).chainwork == side[2].chainwork
    # the rebuilt tree keeps validating new headers
    extend(again, again.best, 2)
    assert again.height == 22
    with pytest.raises(ValueError):
        HeaderEntry.from_bytes(b"\x00" * 10)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=5000), st.data())
def test_chain_headers_skip_list_ancestor_matches_parent_walk(n: int, data: st.DataObject) -> None:
    # a synthetic chain (no PoW needed for ancestry)
    entries: list[HeaderEntry] = []
    parent = None
    for h in range(n + 1):
        e = HeaderEntry(h.to_bytes(32, "little"), b"", h, 0, 0, 0, parent=parent)
        e.build_skip()
        entries.append(e)
        parent = e
    target = data.draw(st.integers(min_value=0, max_value=n))
    assert entries[-1].ancestor(target) is entries[target]
    assert entries[-1].ancestor(n + 1) is None and entries[-1].ancestor(-1) is None
    assert 0 <= skip_height(n) < max(n, 1)


def test_chain_headers_random_tree_best_is_most_work() -> None:
    rng = random.Random(7)
    tree = HeaderTree(REG)
    nodes = [tree.genesis]
    for i in range(60):
        parent = rng.choice(nodes)
        nodes += extend(tree, parent, 1, tag=100 + i)
    best = max(nodes, key=lambda e: (e.chainwork, -e.seq))
    assert tree.best is best
    walk = [best]
    while walk[-1].parent is not None:
        walk.append(walk[-1].parent)
    assert [tree.best_chain_at(h) for h in range(best.height + 1)] == walk[::-1]


def test_chain_headers_reconsider_and_tips() -> None:
    tree = HeaderTree(REG)
    base = extend(tree, tree.genesis, 3)[-1]
    a = extend(tree, base, 3, tag=1)
    b = extend(tree, base, 2, tag=2)
    assert tree.tips() == [a[-1], b[-1]]
    tree.mark_failed(a[0])
    assert tree.best is b[-1] and tree.tips()[0] is b[-1]
    tree.reconsider(a[2])  # reconsidering a descendant clears the failed ancestor too
    assert not any(e.failed for e in a)
    assert tree.best is a[-1]
    extend(tree, a[-1], 1)
    assert len(tree.tips()) == 2 and tree.tips()[0] is tree.best

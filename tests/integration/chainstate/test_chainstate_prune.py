"""Pruning in the regtest fast-prune test mode: files go, 288 blocks stay, reorgs within them work."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.chain.chainstate import REORG_BEYOND_PRUNED, BlockStatus, Chainstate, ChainstateError
from node.chain.params import MAINNET, REGTEST
from node.chain.prune import MIN_BLOCKS_TO_KEEP, PruneConfigError
from protocols.bitcoin.block import Block
from tests.unit.chainstate.blocktools import Tip, build_chain, fixture_blocks, tip_of

TARGET_MIB = 0.25


@pytest.fixture(scope="module")
def long_chain(core_vectors: Path) -> list[bytes]:
    fx = [b.serialize() for b in fixture_blocks(core_vectors)]
    padded = build_chain(tip_of(Block.from_bytes(fx[-1]), 206), 400, pad=1500)
    return fx + [b.serialize() for b in padded]


def _tip(cs: Chainstate) -> Tip:
    return Tip(cs.tip.hash, cs.tip.height, cs.tip.time)


@pytest.fixture
def pruned(tmp_path: Path, long_chain):
    cs = Chainstate.open(
        tmp_path / "p", REGTEST, prune_mib=TARGET_MIB, fast_prune=True, script_threads=1
    )
    for i, raw in enumerate(long_chain):
        assert cs.process_block(raw).status is BlockStatus.ACCEPTED
        if i % 100 == 99:
            cs.flush()  # pruning happens at flushes, as in Core
    cs.flush()
    yield cs
    cs.close()


def test_prune_target_rules(tmp_path: Path):
    with pytest.raises(PruneConfigError, match="550"):
        Chainstate.open(tmp_path / "a", REGTEST, prune_mib=100)
    with pytest.raises(Exception, match="regtest-only"):
        Chainstate.open(tmp_path / "b", MAINNET, prune_mib=1, fast_prune=True)
    cs = Chainstate.open(tmp_path / "c", REGTEST, prune_mib=550, script_threads=1)
    try:
        info = cs.prune_info()
        assert info.pruned and info.target_bytes == 550 * 1024 * 1024
    finally:
        cs.close()


def test_files_deleted_and_last_288_blocks_kept(pruned: Chainstate):
    cs = pruned
    tip = cs.height
    assert tip == 606
    info = cs.prune_info()
    assert info.pruned and info.prune_height > 0
    assert info.prune_height <= tip - MIN_BLOCKS_TO_KEEP + 1
    blocks_dir = cs.datadir / "blocks"
    assert not (blocks_dir / "blk00000.dat").exists()
    assert not (blocks_dir / "rev00000.dat").exists()
    present = sorted(p.name for p in blocks_dir.glob("blk*.dat"))
    assert len(present) == info.files
    for height in range(tip - MIN_BLOCKS_TO_KEEP + 1, tip + 1):
        h = cs.block_hash_at(height)
        assert cs.get_block(h) is not None, height
    assert cs.get_block(cs.block_hash_at(1)) is None
    assert cs.get_block(cs.block_hash_at(info.prune_height - 1)) is None
    # The files that remain hold about the target, never less than the protected window.
    assert info.size_on_disk <= TARGET_MIB * 1024 * 1024 + 2 * 65536 or all(
        f.height_last >= tip - MIN_BLOCKS_TO_KEEP for f in cs.store.files.values() if f.size
    )


def test_pruned_node_reorgs_within_window(pruned: Chainstate):
    cs = pruned
    fork_height = cs.height - 10
    fork = cs.get_block(cs.block_hash_at(fork_height))
    branch = build_chain(Tip(fork.hash, fork_height, fork.header.time), 12, extra=b"fork")
    for blk in branch:
        cs.process_block(blk)
    assert cs.tip.hash == branch[-1].hash
    stats = cs.utxo_stats()
    assert stats.count > 0


def test_pruned_node_refuses_reorg_below_window(pruned: Chainstate):
    cs = pruned
    before = cs.tip
    stats = cs.utxo_stats()
    fork_height = cs.prune_info().prune_height - 5
    fork_hash = cs.block_hash_at(fork_height)
    entry = cs.entry(fork_hash)
    parent = Tip(fork_hash, fork_height, entry.time)
    branch = build_chain(parent, before.height - fork_height + 2, extra=b"deep")
    results = [cs.process_block(b) for b in branch]
    assert all(r.status is BlockStatus.ACCEPTED for r in results)
    assert any(r.reason == REORG_BEYOND_PRUNED for r in results)
    assert cs.tip == before
    assert cs.utxo_stats() == stats


def test_pruned_datadir_reopens(pruned: Chainstate, tmp_path: Path, long_chain):
    info = pruned.prune_info()
    tip = pruned.tip
    stats = pruned.utxo_stats()
    pruned.close()
    cs = Chainstate.open(
        tmp_path / "p", REGTEST, prune_mib=TARGET_MIB, fast_prune=True, script_threads=1
    )
    try:
        assert cs.tip == tip
        assert cs.utxo_stats() == stats
        assert cs.prune_info().prune_height == info.prune_height
        more = build_chain(_tip(cs), 3)
        for blk in more:
            assert cs.process_block(blk).tip_changed
    finally:
        cs.close()


def test_pruned_datadir_needs_a_prune_target(pruned: Chainstate, tmp_path: Path):
    pruned.close()
    with pytest.raises(ChainstateError, match="was pruned"):
        Chainstate.open(tmp_path / "p", REGTEST, script_threads=1)

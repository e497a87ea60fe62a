"""Coin encoding, undo records, the write-back cache, block files and the prune policy."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain.blockstore import BlockStore, BlockStoreError, FileInfo
from node.chain.coins import Coin, CoinDecodeError, decode_coin, encode_coin, encode_parts
from node.chain.prune import (
    MIN_BLOCKS_TO_KEEP,
    PRUNE_BUFFER,
    PruneConfigError,
    PrunePolicy,
    files_to_prune,
)
from node.chain.undo import BlockUndo
from node.chain.utxo import BlockView, CoinsCache, compute_stats

coins = st.builds(
    Coin,
    st.integers(0, 10_000_000),
    st.booleans(),
    st.integers(0, 21_000_000 * 100_000_000),
    st.binary(max_size=300),
)


@settings(max_examples=300, deadline=None)
@given(coin=coins)
def test_coin_roundtrip(coin: Coin):
    data = encode_coin(coin)
    assert decode_coin(data) == coin
    assert encode_parts(coin.height, coin.coinbase, coin.amount, coin.script) == data


def test_coin_is_compact_and_rejects_garbage():
    c = Coin(850_000, False, 12_345_678, b"\x00\x14" + bytes(20))
    assert len(encode_coin(c)) == 1 + 3 + 3 + 22
    with pytest.raises(CoinDecodeError):
        decode_coin(b"")
    with pytest.raises(CoinDecodeError):
        decode_coin(b"\x99\x01")  # lengths promise 9 + 9 bytes


@settings(max_examples=100, deadline=None)
@given(txs=st.lists(st.lists(coins, min_size=1, max_size=4), max_size=5))
def test_undo_roundtrip_and_checksum(txs):
    undo = BlockUndo(txs)
    h = bytes(range(32))
    data = undo.serialize(h)
    assert BlockUndo.parse(data, h) == undo
    with pytest.raises(CoinDecodeError):
        BlockUndo.parse(data, bytes(32))  # undo of another block
    corrupt = bytearray(data)
    corrupt[0] ^= 1
    with pytest.raises(CoinDecodeError):
        BlockUndo.parse(bytes(corrupt), h)


@pytest.fixture
def env(tmp_path: Path):
    e = lmdb.open(str(tmp_path / "db"), max_dbs=2, map_size=1 << 26)
    yield e, e.open_db(b"coins")
    e.close()


def _op(n: int) -> bytes:
    return n.to_bytes(32, "big") + b"\x00" * 4


def _flush(e, db, cache: CoinsCache) -> None:
    with e.begin(write=True) as txn:
        cache.write(txn)
    cache.committed()


def test_cache_fresh_coins_never_touch_disk(env):
    e, db = env
    cache = CoinsCache(e, db)
    c = Coin(1, False, 5, b"\x51")
    cache.add(_op(1), c)
    assert cache.spend(_op(1)) == c
    assert cache.dirty_count == 0  # created and spent between flushes
    cache.add(_op(2), c)
    _flush(e, db, cache)
    assert compute_stats(e, db).count == 1
    assert cache.get(_op(2)) == c  # read back from LMDB
    assert cache.spend(_op(2)) == c
    assert cache.spend(_op(2)) is None
    _flush(e, db, cache)
    assert compute_stats(e, db).count == 0


def test_coinbase_overwrite_is_not_fresh(env):
    e, db = env
    cache = CoinsCache(e, db)
    c = Coin(1, True, 5, b"\x51")
    cache.add(_op(3), c)
    _flush(e, db, cache)
    cache.add(_op(3), Coin(2, True, 6, b"\x51"), possible_overwrite=True)
    cache.spend(_op(3))
    _flush(e, db, cache)
    assert compute_stats(e, db).count == 0  # the spend reached the disk


def test_block_view_changes_only_on_apply(env):
    e, db = env
    cache = CoinsCache(e, db)
    cache.add(_op(1), Coin(1, False, 5, b"\x51"))
    view = BlockView(cache)
    assert view.spend(_op(1)) is not None
    view.add(_op(2), Coin(2, False, 4, b"\x51"))
    view.add(_op(3), Coin(2, False, 1, b"\x51"))
    assert view.spend(_op(3)) is not None  # created and spent inside the block
    assert cache.get(_op(1)) is not None and cache.get(_op(2)) is None
    view.apply()
    assert cache.get(_op(1)) is None
    assert cache.get(_op(2)).amount == 4
    assert cache.get(_op(3)) is None


def test_stats_digest_is_order_independent(tmp_path: Path):
    digests = []
    for order in (range(50), reversed(range(50))):
        e = lmdb.open(str(tmp_path / f"d{len(digests)}"), max_dbs=2, map_size=1 << 24)
        db = e.open_db(b"coins")
        cache = CoinsCache(e, db)
        for i in order:
            cache.add(_op(i), Coin(i, i % 2 == 0, i * 1000, bytes([i])))
        _flush(e, db, cache)
        digests.append(compute_stats(e, db))
        e.close()
    assert digests[0] == digests[1]
    assert digests[0].count == 50 and digests[0].total_amount == sum(range(50)) * 1000


def test_blockstore_files_records_and_caps(tmp_path: Path):
    store = BlockStore(tmp_path / "blocks", b"\xfa\xbf\xb5\xda", max_file_size=1000)
    positions = [store.write_block(bytes([i]) * 300, i) for i in range(7)]
    assert [p[0] for p in positions] == [0, 0, 0, 1, 1, 1, 2]
    undo_pos = store.write_undo(1, b"undo-bytes")
    store.sync()
    for i, (num, pos) in enumerate(positions):
        assert store.read_block(num, pos) == bytes([i]) * 300
    assert store.read_undo(1, undo_pos) == b"undo-bytes"
    assert store.files[1] == FileInfo(3, 924, 18, 3, 5)
    store.delete_files([0])
    assert not (tmp_path / "blocks" / "blk00000.dat").exists()
    with pytest.raises(BlockStoreError, match="missing"):
        store.read_block(*positions[0])
    with pytest.raises(BlockStoreError, match="magic"):
        store.read_block(1, positions[3][1] + 1)
    store.close()
    reopened = BlockStore(tmp_path / "blocks", b"\xfa\xbf\xb5\xda", 1000, files=store.files)
    assert reopened.current == 2
    assert reopened.read_block(*positions[6]) == bytes([6]) * 300
    reopened.close()


def test_prune_policy_limits():
    assert not PrunePolicy.from_mib(0, 1000).enabled
    with pytest.raises(PruneConfigError, match="550"):
        PrunePolicy.from_mib(549, 1000)
    with pytest.raises(PruneConfigError):
        PrunePolicy.from_mib(-1, 1000)
    p = PrunePolicy.from_mib(550, 100_000)
    assert p.target_bytes == 550 << 20 and p.buffer_bytes == PRUNE_BUFFER
    fast = PrunePolicy.from_mib(0.5, 1000, fast_prune=True)
    assert fast.target_bytes == 1 << 19 and fast.prune_after_height == 100


def test_files_to_prune_keeps_recent_and_current():
    policy = PrunePolicy(1000, 100, 0)
    files = {
        0: FileInfo(10, 600, 100, 0, 99),
        1: FileInfo(10, 600, 100, 100, 199),
        2: FileInfo(10, 600, 100, 200, 299),
        3: FileInfo(10, 600, 100, 300, 400),
    }
    # tip 500: blocks above 212 are protected, so files 2 and 3 stay
    assert files_to_prune(files, 3, 500, policy) == [0, 1]
    assert files_to_prune(files, 3, 99 + MIN_BLOCKS_TO_KEEP, policy) == [0]
    assert files_to_prune(files, 3, 98 + MIN_BLOCKS_TO_KEEP, policy) == []
    assert files_to_prune(files, 3, 90, policy) == []  # below prune_after_height
    assert files_to_prune(files, 0, 900, policy) == [1, 2, 3]  # never the file being written
    assert files_to_prune(files, 3, 900, PrunePolicy(10_000, 100, 0)) == []  # fits target


_SCRIPT_BYTES = st.sampled_from(
    [0x00, 0x01, 0x02, 0x4B, 0x4C, 0x4D, 0x4E, 0x51, 0x60, 0x76, 0xA9, 0xAC, 0xAD, 0xAE, 0xAF, 0xFF]
)


@settings(max_examples=400, deadline=None)
@given(
    script=st.one_of(
        st.binary(max_size=80),
        st.lists(_SCRIPT_BYTES, max_size=60).map(bytes),
    )
)
def test_fast_legacy_sigop_count_matches_reference(script: bytes):
    from node.chain.validation import legacy_sigop_count
    from protocols.bitcoin.script import sigop_count

    assert legacy_sigop_count(script) == sigop_count(script)

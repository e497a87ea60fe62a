"""Chainstate queries, subscriptions and lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.chain.chainstate import BlockStatus, Chainstate, ChainstateError
from node.chain.params import REGTEST, SIGNET
from protocols.bitcoin.block import Block
from protocols.bitcoin.tx import outpoint


def test_queries_after_fixture(open_cs, fixture_raw):
    cs = open_cs(fixture_raw)
    assert cs.height == 206
    blk = Block.from_bytes(fixture_raw[204])
    assert cs.get_block(blk.hash).serialize() == fixture_raw[204]
    assert cs.get_block_bytes(blk.hash) == fixture_raw[204]
    assert cs.get_block(b"\x00" * 32) is None
    assert cs.block_hash_at(205) == blk.hash and cs.in_active_chain(blk.hash)
    assert cs.block_hash_at(0) == REGTEST.genesis_hash
    assert cs.get_block(REGTEST.genesis_hash).hash == REGTEST.genesis_hash
    # the spent and unspent outputs of block 206's P2TR spend
    last = Block.from_bytes(fixture_raw[-1])
    spend = last.txs[1]
    for txin in spend.inputs:
        assert cs.get_utxo(txin.prevout) is None
    coin = cs.get_utxo(outpoint(spend.txid, 0))
    assert coin is not None and coin.height == 206 and not coin.coinbase
    assert coin.script == spend.outputs[0].script_pubkey
    cb = cs.get_utxo(outpoint(last.txs[0].txid, 0))
    assert cb.coinbase and cb.amount == last.txs[0].outputs[0].value
    with pytest.raises(ValueError):
        cs.get_utxo(b"short")
    info = cs.prune_info()
    assert not info.pruned and info.prune_height == 0 and info.size_on_disk > 0


def test_subscribers(open_cs, fixture_raw):
    cs = open_cs(fixture_raw[:10])
    seen = []
    unsubscribe = cs.subscribe(seen.append)
    cs.subscribe(lambda change: 1 / 0)  # a broken subscriber must not break the node
    assert cs.process_block(fixture_raw[10]).tip_changed
    assert len(seen) == 1
    change = seen[0]
    assert change.old.height == 10 and change.new.height == 11
    assert change.connected == (Block.from_bytes(fixture_raw[10]).hash,)
    assert change.disconnected == ()
    unsubscribe()
    cs.process_block(fixture_raw[11])
    assert len(seen) == 1
    assert cs.process_block(fixture_raw[11]).status is BlockStatus.DUPLICATE


def test_lifecycle(tmp_path: Path, fixture_raw):
    cs = Chainstate.open(tmp_path / "d", REGTEST, script_threads=1)
    for raw in fixture_raw[:20]:
        cs.process_block(raw)
    cs.close()
    cs.close()  # idempotent
    with pytest.raises(ChainstateError):
        cs.process_block(fixture_raw[20])
    with pytest.raises(ChainstateError, match="regtest"):
        Chainstate.open(tmp_path / "d", SIGNET)
    with Chainstate.open(tmp_path / "d", REGTEST, script_threads=1) as again:
        assert again.height == 20

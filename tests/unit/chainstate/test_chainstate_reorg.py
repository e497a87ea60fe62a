"""Reorganisations: most-work branch wins, invalid branches are abandoned, Core agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.chain.chainstate import BlockStatus, Chainstate, TipChange
from node.chain.params import REGTEST
from protocols.bitcoin.block import Block
from protocols.bitcoin.tx import outpoint
from tests.helpers.kernel import run_kernel
from tests.unit.chainstate.blocktools import (
    Tip,
    coinbase_outpoint,
    make_block,
    spend_tx,
)


def _branch(parent: Tip, count: int, txs_at: dict[int, list] | None = None, **kw) -> list[Block]:
    blocks = []
    for i in range(count):
        b = make_block(parent, (txs_at or {}).get(i, []), extra=kw.get("extra", b""))
        blocks.append(b)
        parent = Tip(b.hash, parent.height + 1, b.header.time)
    return blocks


@pytest.fixture
def scenario(extended_raw):
    """Base = 316 blocks. A: 2 blocks spending cb207 one way; B: 3 blocks spending it another
    way; C: 4 blocks whose third overspends."""
    base_tip_block = Block.from_bytes(extended_raw[-1])
    base = Tip(base_tip_block.hash, 316, base_tip_block.header.time)
    cb207 = Block.from_bytes(extended_raw[206])
    op = coinbase_outpoint(cb207)
    value = cb207.txs[0].outputs[0].value
    tx_a = spend_tx([op], [value - 10, 10])
    tx_b = spend_tx([op], [value])
    a = _branch(base, 2, {0: [tx_a]}, extra=b"A")
    b = _branch(base, 3, {1: [tx_b]}, extra=b"B")
    c = _branch(base, 2, extra=b"C")
    c_tip = Tip(c[-1].hash, 318, c[-1].header.time)
    bad = make_block(c_tip, [spend_tx([outpoint(tx_b.txid, 0)], [value])], extra=b"C")
    # tx_b is only on branch B, so on C its input is missing.
    c.append(bad)
    c.append(make_block(Tip(bad.hash, 319, bad.header.time), extra=b"C"))
    return {"a": a, "b": b, "c": c, "tx_a": tx_a, "tx_b": tx_b, "op": op}


def _raw(blocks: list[Block]) -> list[bytes]:
    return [b.serialize() for b in blocks]


def test_reorg_to_longer_branch_matches_fresh_node(open_cs, extended_raw, scenario):
    cs = open_cs(extended_raw)
    events: list[TipChange] = []
    cs.subscribe(events.append)
    for blk in scenario["a"]:
        assert cs.process_block(blk).status is BlockStatus.ACCEPTED
    assert cs.height == 318
    assert cs.get_utxo(outpoint(scenario["tx_a"].txid, 1)).amount == 10
    b = scenario["b"]
    assert cs.process_block(b[0]).tip_changed is False
    assert cs.process_block(b[1]).tip_changed is False  # equal work: first seen stays
    result = cs.process_block(b[2])
    assert result.tip_changed and result.tip.hash == b[2].hash
    assert cs.get_utxo(outpoint(scenario["tx_a"].txid, 1)) is None
    assert cs.get_utxo(outpoint(scenario["tx_b"].txid, 0)) is not None
    last = events[-1]
    assert last.disconnected == (scenario["a"][1].hash, scenario["a"][0].hash)
    assert last.connected == tuple(x.hash for x in b)
    fresh = open_cs(extended_raw + _raw(b), name="fresh")
    assert cs.utxo_stats() == fresh.utxo_stats()


def test_invalid_block_in_new_branch_returns_to_best_valid_chain(
    open_cs, extended_raw, scenario, tmp_path: Path
):
    cs = open_cs(extended_raw)
    for blk in scenario["b"]:
        cs.process_block(blk)
    before_stats = cs.utxo_stats()
    b_tip = cs.tip
    c = scenario["c"]
    for blk in c[:3]:
        res = cs.process_block(blk)
        assert res.status is BlockStatus.ACCEPTED and not res.tip_changed
    res = cs.process_block(c[3])  # more work than B: reorg attempt, c[2] fails
    assert res.status is BlockStatus.INVALID
    assert res.reason == "bad-prevblk"
    assert cs.tip == b_tip
    assert cs.utxo_stats() == before_stats
    again = cs.process_block(c[2])
    assert again.status is BlockStatus.INVALID
    assert again.reason == "bad-txns-inputs-missingorspent"
    # Core's engine ends on the same tip with the same UTXO totals.
    allraw = extended_raw + _raw(scenario["b"]) + _raw(c)
    kernel = run_kernel(allraw, tmp_path / "kernel")
    assert kernel.tip_hash == cs.tip.hash
    stats = cs.utxo_stats()
    assert (kernel.utxos, kernel.total_amount) == (stats.count, stats.total_amount)


def test_reorg_survives_restart(open_cs, extended_raw, scenario, tmp_path: Path):
    cs = open_cs(extended_raw + _raw(scenario["a"]) + _raw(scenario["b"]), name="r")
    stats = cs.utxo_stats()
    tip = cs.tip
    cs.close()
    again = Chainstate.open(tmp_path / "r", REGTEST, script_threads=1)
    try:
        assert again.tip == tip
        assert again.utxo_stats() == stats
        # the losing branch is still stored and can win later
        a_tip = Tip(scenario["a"][-1].hash, 318, scenario["a"][-1].header.time)
        more = _branch(a_tip, 2, extra=b"A2")
        for blk in more:
            again.process_block(blk)
        assert again.tip.hash == more[-1].hash
        assert again.get_utxo(outpoint(scenario["tx_a"].txid, 1)).amount == 10
    finally:
        again.close()


def test_headers_first_then_blocks(open_cs, extended_raw, scenario):
    cs = open_cs(extended_raw)
    b = scenario["b"]
    result = cs.process_headers([blk.header for blk in b])
    assert result.accepted == 3 and result.last_height == 319 and result.reason is None
    assert cs.height == 316  # headers alone never move the tip
    assert cs.best_header.hash == b[2].hash and cs.best_header.height == 319
    # blocks out of order: the tip moves only when the chain of data is complete
    assert cs.process_block(b[2]).tip_changed is False
    assert cs.process_block(b[1]).tip_changed is False
    res = cs.process_block(b[0])
    assert res.tip_changed and cs.tip.hash == b[2].hash


def test_tampered_branch_block_does_not_poison_header(open_cs, extended_raw, scenario):
    cs = open_cs(extended_raw)
    b = scenario["b"]
    mutated = Block.from_bytes(b[1].serialize())
    mutated.txs.pop()  # drops tx_b: merkle root no longer matches the header
    assert mutated.hash == b[1].hash  # same header, different body
    cs.process_block(b[0])
    res = cs.process_block(mutated)
    assert res.status is BlockStatus.INVALID and res.reason == "bad-txnmrklroot"
    # The header is not marked invalid: the genuine block is accepted afterwards.
    assert cs.process_block(b[1]).status is BlockStatus.ACCEPTED
    assert cs.process_block(b[2]).tip_changed


def test_reorg_disconnects_fixture_spends(open_cs, fixture_raw, tmp_path: Path):
    """Fork at fixture height 200: disconnecting 201..206 (P2WPKH and P2TR spends) restores
    exactly the UTXO set of a node that never saw them; reconnecting gets them back."""
    cs = open_cs(fixture_raw)
    full_stats = cs.utxo_stats()
    fork = Block.from_bytes(fixture_raw[199])
    branch = _branch(Tip(fork.hash, 200, fork.header.time), 7, extra=b"alt")
    for blk in branch:
        cs.process_block(blk)
    assert cs.tip.hash == branch[-1].hash and cs.height == 207
    fresh = open_cs(fixture_raw[:200] + _raw(branch), name="fresh")
    assert cs.utxo_stats() == fresh.utxo_stats()
    kernel = run_kernel(fixture_raw + _raw(branch), tmp_path / "kernel")
    stats = cs.utxo_stats()
    assert kernel.tip_hash == cs.tip.hash
    assert (kernel.utxos, kernel.total_amount) == (stats.count, stats.total_amount)
    # The fixture branch wins again with two more blocks on 206.
    top = Block.from_bytes(fixture_raw[-1])
    more = _branch(Tip(top.hash, 206, top.header.time), 2, extra=b"back")
    for blk in more:
        cs.process_block(blk)
    assert cs.tip.hash == more[-1].hash
    again = open_cs(fixture_raw + _raw(more), name="again")
    assert cs.utxo_stats() == again.utxo_stats()
    assert full_stats.count + 2 == again.utxo_stats().count

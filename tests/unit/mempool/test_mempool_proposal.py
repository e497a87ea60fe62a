"""Block proposals (TestBlockValidity): a template's block checked on our tip, nothing stored."""

from __future__ import annotations

import dataclasses

from node.chain.params import REGTEST, block_subsidy
from node.mining.assembler import assemble_block, create_coinbase, solve
from node.mining.template import TemplateBuilder
from tests.unit.mempool.mempool_tools import MINER_SCRIPT, mine, spend


def _proposal(env, txs=(), fees=0, *, value=None, bits=None):
    tip = env.chain.tip
    height = tip.height + 1
    paid = block_subsidy(height, REGTEST) + fees if value is None else value
    coinbase = create_coinbase(height, paid, MINER_SCRIPT, txs=list(txs))
    block = assemble_block(tip.hash, tip.time + 1, 0x207FFFFF, [coinbase, *txs])
    if bits is not None:
        block.header = dataclasses.replace(block.header, bits=bits)
    return block


def test_template_block_is_valid_and_nothing_changes(env):
    a, _ = spend(env.mature(1), 2, fee=3_000)
    b, _ = spend(env.mature(1), 1, fee=2_000)
    for tx in (a, b):
        assert env.pool.accept(tx).accepted
    template = TemplateBuilder(env.chain, env.pool, clock=env.clock).build()
    block = template.to_block(MINER_SCRIPT, b"\x00" * 8)  # unsolved: proof of work aside
    tip, spent = env.chain.tip, a.inputs[0].prevout
    assert env.chain.test_block_validity(block, now=env.clock()) is None
    assert env.chain.tip == tip and env.chain.get_utxo(spent) is not None
    assert len(env.pool) == 2


def test_rule_breaks_are_named(env):
    tx, _ = spend(env.mature(1), 1, fee=1_000)
    now = env.clock()
    good = _proposal(env, [tx], 1_000)
    assert env.chain.test_block_validity(good, now=now) is None

    overpaid = _proposal(env, [tx], value=block_subsidy(env.chain.tip.height + 1, REGTEST) + 1_001)
    assert env.chain.test_block_validity(overpaid, now=now) == "bad-cb-amount"

    wrong_root = _proposal(env, [tx], 1_000)
    wrong_root.header = dataclasses.replace(wrong_root.header, merkle_root=bytes(32))
    assert env.chain.test_block_validity(wrong_root, now=now) == "bad-txnmrklroot"

    assert env.chain.test_block_validity(_proposal(env, bits=0x1D00FFFF), now=now) == (
        "bad-diffbits"
    )

    unsigned, _ = spend(env.mature(1), 1, fee=1_000, sign=False)
    reason = env.chain.test_block_validity(_proposal(env, [unsigned], 1_000), now=now)
    assert reason is not None and reason.startswith("block-script-verify-flag-failed")


def test_off_tip_and_known_blocks(env):
    old = _proposal(env)
    solve(old.header)
    mine(env.chain, extra=b"other")  # the tip moves on: the proposal's parent is no longer the best
    assert env.chain.test_block_validity(old) == "inconclusive-not-best-prevblk"
    connected = mine(env.chain, extra=b"again")
    assert env.chain.test_block_validity(connected) == "duplicate"

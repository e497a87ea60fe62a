"""Differential test: a sequence of valid and invalid blocks, our verdict vs Core's engine.

Each candidate is built on the current tip; after every block both nodes must agree on
whether it became the tip, and at the end on the tip and the UTXO totals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from protocols.bitcoin.block import Block
from protocols.bitcoin.tx import TxOut, outpoint
from tests.helpers.kernel import KernelOracle, run_kernel
from tests.unit.chainstate.blocktools import (
    Tip,
    build_chain,
    coinbase_outpoint,
    fixture_blocks,
    make_block,
    solve,
    spend_tx,
    tip_of,
)


def _cases(cb: dict[int, tuple[bytes, int]]) -> list[tuple[str, Callable[[Tip, dict], Block]]]:
    """(name, build(tip, scratch)) in order; ``cb[h]`` = (outpoint, value) of an OP_TRUE coinbase."""

    def lock_parent(tip, st):
        op, v = cb[207]
        st["parent"] = spend_tx([op], [v])
        return make_block(tip, [st["parent"]])

    def time_locked_child(tip, st):
        child = spend_tx([outpoint(st["parent"].txid, 0)], [cb[207][1]], sequence=(1 << 22) | 1)
        st["child"] = child
        return make_block(tip, [child])

    def slow_block(tip, st):
        return make_block(tip, time_delta=100)

    def child_again(tip, st):
        return make_block(tip, [st["child"]])

    def height_locked(tip, st):
        op, v = cb[208]
        return make_block(tip, [spend_tx([op], [v], sequence=tip.height)])  # far future

    def height_lock_met(tip, st):
        op, v = cb[208]
        return make_block(tip, [spend_tx([op], [v], sequence=1)])

    def immature(tip, st):
        op, v = cb[tip.height + 1 - 99]
        return make_block(tip, [spend_tx([op], [v])])

    def overspend(tip, st):
        op, v = cb[209]
        return make_block(tip, [spend_tx([op], [v + 1])])

    def cb_overpay(tip, st):
        b = make_block(tip)
        b.txs[0].outputs[0].value += 1
        return solve(b)

    def fee_claim(tip, st):
        op, v = cb[209]
        return make_block(tip, [spend_tx([op], [v - 500])], fees=500)

    def double_spend(tip, st):
        op, v = cb[209]
        return make_block(tip, [spend_tx([op], [v - 1])], fees=1)

    def script_lock(tip, st):
        op, v = cb[210]
        st["lock"] = spend_tx([op], [v], script=b"\x52\x87")
        return make_block(tip, [st["lock"]])

    def script_bad(tip, st):
        tx = spend_tx([outpoint(st["lock"].txid, 0)], [cb[210][1]])
        tx.inputs[0].script_sig = b"\x53"
        return make_block(tip, [tx])

    def script_good(tip, st):
        tx = spend_tx([outpoint(st["lock"].txid, 0)], [cb[210][1]])
        tx.inputs[0].script_sig = b"\x52"
        return make_block(tip, [tx])

    def nonfinal_locktime(tip, st):
        op, v = cb[211]
        return make_block(tip, [spend_tx([op], [v], sequence=0, locktime=tip.height + 2)])

    def too_many_sigops(tip, st):
        b = make_block(tip)
        b.txs[0].outputs.append(TxOut(0, b"\xac" * 20_001))
        return solve(b)

    def sigops_at_limit(tip, st):
        b = make_block(tip)
        b.txs[0].outputs.append(TxOut(0, b"\xac" * 19_990))
        return solve(b)

    def bip30_setup(tip, st):
        op, v = cb[212]
        st["dup"] = spend_tx([op], [v])
        return make_block(tip, [st["dup"]])

    def bip30_repeat(tip, st):
        return make_block(tip, [st["dup"]])

    cases = [
        ("lock_parent", lock_parent),
        ("time_locked_child", time_locked_child),
    ]
    cases += [(f"slow_block_{i}", slow_block) for i in range(10)]
    cases += [("child_still_locked", child_again)]
    cases += [(f"slow_block_{i}", slow_block) for i in range(10, 15)]
    cases += [
        ("child_unlocked", child_again),
        ("height_locked", height_locked),
        ("height_lock_met", height_lock_met),
        ("immature", immature),
        ("overspend", overspend),
        ("cb_overpay", cb_overpay),
        ("fee_claim", fee_claim),
        ("double_spend", double_spend),
        ("script_lock", script_lock),
        ("script_bad", script_bad),
        ("script_good", script_good),
        ("nonfinal_locktime", nonfinal_locktime),
        ("too_many_sigops", too_many_sigops),
        ("sigops_at_limit", sigops_at_limit),
        ("bip30_setup", bip30_setup),
        ("bip30_repeat", bip30_repeat),
    ]
    return cases


@pytest.mark.slow
def test_verdicts_match_kernel(core_vectors: Path, tmp_path: Path):
    fx = [b.serialize() for b in fixture_blocks(core_vectors)]
    extra = build_chain(tip_of(Block.from_bytes(fx[-1]), 206), 110)
    base = fx + [b.serialize() for b in extra]
    cb = {207 + i: (coinbase_outpoint(b), b.txs[0].outputs[0].value) for i, b in enumerate(extra)}
    ours = Chainstate.open(tmp_path / "ours", REGTEST, script_threads=2)
    kernel = KernelOracle("regtest", tmp_path / "kernel")
    try:
        for raw in base:
            ours.process_block(raw)
            kernel.submit(raw, Block.from_bytes(raw).hash)
        assert ours.tip.hash == kernel.tip
        scratch: dict = {}
        verdicts = []
        connected = list(base)
        for name, build in _cases(cb):
            t = ours.tip
            block = build(Tip(t.hash, t.height, t.time), scratch)
            raw = block.serialize()
            mine = ours.process_block(raw)
            ok_ours = ours.tip.hash == block.hash
            ok_kernel = kernel.submit(raw, block.hash)
            verdicts.append((name, ok_ours, ok_kernel, mine.reason))
            assert ok_ours == ok_kernel, verdicts[-1]
            if ok_ours:
                connected.append(raw)
        expected = {
            "time_locked_child": False,
            "child_still_locked": False,
            "child_unlocked": True,
            "height_locked": False,
            "immature": False,
            "overspend": False,
            "cb_overpay": False,
            "double_spend": False,
            "script_bad": False,
            "nonfinal_locktime": False,
            "too_many_sigops": False,
            "sigops_at_limit": True,
            "bip30_repeat": False,
        }
        got = {name: ok for name, ok, _, _ in verdicts}
        assert {k: got[k] for k in expected} == expected
        stats = ours.utxo_stats()
    finally:
        ours.close()
        kernel.close()
    replay = run_kernel(connected, tmp_path / "replay")
    assert (replay.utxos, replay.total_amount) == (stats.count, stats.total_amount)

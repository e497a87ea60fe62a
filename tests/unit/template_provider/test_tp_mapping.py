"""Template -> NewTemplate/SetNewPrevHash, and SubmitSolution -> block, on a real chainstate."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain.chainstate import BlockStatus
from node.mining.assembler import witness_commitment_script
from node.mining.template import (
    DEFAULT_RESERVED_SIGOPS,
    DEFAULT_RESERVED_WEIGHT,
    TemplateBuilder,
)
from node.mining.tp_mapping import (
    SolutionError,
    block_from_solution,
    coinbase_merkle_path,
    new_template_message,
    reserved_for,
    set_new_prev_hash_message,
)
from protocols.bitcoin.merkle import merkle_root, root_from_branch
from protocols.bitcoin.script import push_int
from protocols.bitcoin.tx import Tx
from protocols.sv2.messages import NewTemplate, SubmitSolution, TemplateSetNewPrevHash
from tests.unit.mempool.mempool_tools import spend
from tests.unit.template_provider.tp_tools import (
    PAYOUT_SCRIPT,
    client_coinbase,
    parse_outputs,
    solve_template,
)


def _fill(env, n: int) -> list[Tx]:
    """``n`` mempool transactions (parents and children) with distinct fees."""
    txs = []
    for i in range(n // 2):
        parent, outs = spend(env.mature(1), 2, fee=2_000 + 100 * i)
        assert env.pool.accept(parent).accepted
        child, _ = spend(outs[:1], 1, fee=5_000 + i)
        assert env.pool.accept(child).accepted
        txs += [parent, child]
    return txs


def _roundtrip(message):
    """Encode and decode the message, so the fields are what a client really receives."""
    payload = message.encode_payload()
    return type(message).CODEC.decode(payload, tlvs=False)


@pytest.mark.parametrize("n_txs", [0, 1, 2, 7])
def test_tp_template_message_fields_and_merkle_path(tp_env, n_txs: int) -> None:
    _fill(tp_env, n_txs)
    if n_txs % 2:
        tx, _ = spend(tp_env.mature(1), 1, fee=3_000)
        assert tp_env.pool.accept(tx).accepted
    tpl = TemplateBuilder(tp_env.chain, tp_env.pool, clock=tp_env.clock).build()
    assert len(tpl.transactions) == n_txs
    msg = _roundtrip(new_template_message(tpl, 42, future=True))
    assert isinstance(msg, NewTemplate)
    assert (msg.template_id, msg.future_template, msg.version) == (42, True, tpl.version)
    # BIP34: the prefix is exactly the height push; the client's extranonce follows it.
    assert msg.coinbase_prefix == push_int(tpl.height) and len(msg.coinbase_prefix) <= 8
    assert msg.coinbase_tx_value_remaining == tpl.coinbasevalue
    assert msg.coinbase_tx_value_remaining > 50 * 10**8 // 2 ** (tpl.height // 150) - 1
    # The only output the TP asks for is the BIP141 commitment to the template's wtxids.
    outputs = parse_outputs(msg.coinbase_tx_outputs, msg.coinbase_tx_outputs_count)
    assert [(o.value, o.script_pubkey) for o in outputs] == [(0, tpl.default_witness_commitment)]
    assert tpl.default_witness_commitment == witness_commitment_script(
        [t.tx for t in tpl.transactions]
    )
    # Merkle path: folding any coinbase txid up the path gives the block's merkle root.
    coinbase = client_coinbase(msg, extranonce=os.urandom(8))
    root, _ = merkle_root([coinbase.txid] + [t.txid for t in tpl.transactions])
    assert root_from_branch(coinbase.txid, list(msg.merkle_path)) == root
    assert len(msg.merkle_path) == (len(tpl.transactions)).bit_length()

    prev = _roundtrip(set_new_prev_hash_message(tpl, 42))
    assert isinstance(prev, TemplateSetNewPrevHash)
    assert prev.prev_hash == tp_env.chain.tip.hash
    assert (prev.header_timestamp, prev.n_bits) == (tpl.curtime, tpl.bits)
    assert int.from_bytes(prev.target, "little") == tpl.target


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=40), st.binary(min_size=32))
def test_tp_merkle_path_folds_to_root_for_any_tx_list(txids: list[bytes], leaf: bytes) -> None:
    from types import SimpleNamespace

    leaf = leaf[:32]
    fake = SimpleNamespace(transactions=[SimpleNamespace(txid=t) for t in txids])
    path = coinbase_merkle_path(fake)  # only .transactions[*].txid is read
    root, _ = merkle_root([leaf, *txids])
    assert root_from_branch(leaf, list(path)) == root


@pytest.mark.parametrize("with_witness", [True, False])
def test_tp_solution_becomes_a_valid_block(tp_env, with_witness: bool) -> None:
    txs = _fill(tp_env, 6)
    tpl = TemplateBuilder(tp_env.chain, tp_env.pool, clock=tp_env.clock).build()
    new = _roundtrip(new_template_message(tpl, 7, future=True))
    prev = _roundtrip(set_new_prev_hash_message(tpl, 7))
    coinbase = client_coinbase(new, with_witness=with_witness)
    solution = _roundtrip(solve_template(new, prev, coinbase))
    assert isinstance(solution, SubmitSolution)
    block = block_from_solution(tpl, solution)
    assert block.txs[0].inputs[0].witness  # put back when the client left it out
    assert {t.txid for t in block.txs[1:]} == {t.txid for t in txs}
    assert block.txs[0].outputs[0].script_pubkey == PAYOUT_SCRIPT
    result = tp_env.chain.process_block(block)
    assert result.status is BlockStatus.ACCEPTED and result.tip_changed, result
    assert tp_env.chain.tip.hash == block.hash


def test_tp_solution_with_wrong_nonce_is_rejected_by_the_chain(tp_env) -> None:
    tpl = TemplateBuilder(tp_env.chain, tp_env.pool, clock=tp_env.clock).build()
    new = new_template_message(tpl, 1, future=True)
    prev = set_new_prev_hash_message(tpl, 1)
    good = solve_template(new, prev, client_coinbase(new))
    for nonce in range(good.header_nonce + 1, good.header_nonce + 200):
        bad = SubmitSolution(1, good.version, good.header_timestamp, nonce, good.coinbase_tx)
        block = block_from_solution(tpl, bad)
        if int.from_bytes(block.header.hash, "little") > tpl.target:
            break
    result = tp_env.chain.process_block(block)
    assert result.status is BlockStatus.INVALID and result.reason == "high-hash"


def test_tp_solution_with_non_coinbase_is_refused(tp_env) -> None:
    tpl = TemplateBuilder(tp_env.chain, tp_env.pool, clock=tp_env.clock).build()
    tx, _ = spend(tp_env.mature(1), 1)
    with pytest.raises(SolutionError, match="not a coinbase"):
        block_from_solution(tpl, SubmitSolution(1, 0x20000000, 0, 0, tx.serialize()))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_tp_solution_garbage_coinbase_raises_solution_error_only(data: bytes) -> None:
    from types import SimpleNamespace

    tpl = SimpleNamespace(transactions=(), previousblockhash=bytes(32), bits=0x207FFFFF)
    try:
        block = block_from_solution(tpl, SubmitSolution(1, 1, 2, 3, data))
    except SolutionError:
        return
    assert block.txs[0].is_coinbase()


def test_tp_coinbase_output_constraints_reserve_block_space(tp_env) -> None:
    _fill(tp_env, 6)
    assert reserved_for(0, 0) == (DEFAULT_RESERVED_WEIGHT, DEFAULT_RESERVED_SIGOPS)
    assert reserved_for(100, 3) == (DEFAULT_RESERVED_WEIGHT + 400, DEFAULT_RESERVED_SIGOPS + 12)
    full = TemplateBuilder(tp_env.chain, tp_env.pool, clock=tp_env.clock).build()
    assert len(full.transactions) == 6
    max_weight = DEFAULT_RESERVED_WEIGHT + full.total_weight + 64  # vsize rounds up

    def build(size: int, sigops: int = 0):
        weight, sigop_cost = reserved_for(size, sigops)
        return TemplateBuilder(
            tp_env.chain,
            tp_env.pool,
            clock=tp_env.clock,
            block_max_weight=max_weight,
            reserved_weight=weight,
            reserved_sigops=sigop_cost,
        ).build()

    assert len(build(0).transactions) == 6
    # A client that needs room for big coinbase outputs gets a template that leaves it.
    squeezed = build(full.total_weight // 8)
    assert 0 < len(squeezed.transactions) < 6
    assert squeezed.total_weight + reserved_for(full.total_weight // 8, 0)[0] < max_weight

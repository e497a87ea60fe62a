"""Mutated and hand-built blocks are rejected with Bitcoin Core's reasons, state untouched."""

from __future__ import annotations

import pytest

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.errors import ConsensusError
from node.chain.params import REGTEST, block_subsidy
from protocols.bitcoin.block import Block
from protocols.bitcoin.tx import TxOut, outpoint
from tests.unit.chainstate.blocktools import (
    Tip,
    coinbase_outpoint,
    coinbase_tx,
    copy_block,
    make_block,
    solve,
    spend_tx,
    unsolve,
)

EXT_TIP_HEIGHT = 316


def _tip(cs: Chainstate) -> Tip:
    t = cs.tip
    return Tip(t.hash, t.height, t.time)


def _cb_out(raw_blocks: list[bytes], height: int) -> tuple[bytes, int]:
    block = Block.from_bytes(raw_blocks[height - 1])
    return coinbase_outpoint(block), block.txs[0].outputs[0].value


def assert_rejected(cs: Chainstate, block: Block | bytes, reason: str) -> None:
    before_tip = cs.tip
    before = cs.utxo_stats()
    result = cs.process_block(block)
    assert result.status is BlockStatus.INVALID, result
    assert result.reason is not None and result.reason.startswith(reason), result
    assert cs.tip == before_tip
    assert cs.utxo_stats() == before


@pytest.fixture
def ext_cs(open_cs, extended_raw):
    cs = open_cs(extended_raw)
    assert cs.height == EXT_TIP_HEIGHT
    return cs


@pytest.fixture
def fix201_cs(open_cs, fixture_raw):
    """Fixture imported up to 201, so fixture block 202 (witness spends) can be mutated."""
    return open_cs(fixture_raw[:201])


def test_fixture_block_202_is_accepted_unmodified(fix201_cs, fixture_raw):
    result = fix201_cs.process_block(fixture_raw[201])
    assert result.status is BlockStatus.ACCEPTED and result.tip_changed
    assert result.height == 202


def test_bad_merkle_root(fix201_cs, fixture_raw):
    block = Block.from_bytes(fixture_raw[201])
    block.header.merkle_root = bytes(32)
    assert_rejected(fix201_cs, solve(block, fix_merkle=False), "bad-txnmrklroot")
    # Mutation does not poison the header: the real block is still accepted.
    assert fix201_cs.process_block(fixture_raw[201]).status is BlockStatus.ACCEPTED


def test_duplicated_transaction_mutation(fix201_cs, fixture_raw):
    block = Block.from_bytes(fixture_raw[201])
    block.txs.append(block.txs[-1])  # 21 -> 22 txs: last pair identical, same merkle root
    block = solve(block, fix_merkle=False)
    assert_rejected(fix201_cs, block, "bad-txns-duplicate")


def test_bad_pow(fix201_cs, fixture_raw):
    assert_rejected(fix201_cs, unsolve(Block.from_bytes(fixture_raw[201])), "high-hash")


def test_time_too_old(fix201_cs, fixture_raw):
    block = Block.from_bytes(fixture_raw[201])
    block.header.time = fix201_cs.tip.median_time_past
    assert_rejected(fix201_cs, solve(block), "time-too-old")


def test_bad_witness_commitment(fix201_cs, fixture_raw):
    block = Block.from_bytes(fixture_raw[201])
    commit = block.txs[0].outputs[-1]
    block.txs[0].outputs[-1] = TxOut(0, commit.script_pubkey[:6] + bytes(32))
    assert_rejected(fix201_cs, solve(block), "bad-witness-merkle-match")


def test_bad_witness_nonce_size(fix201_cs, fixture_raw):
    block = Block.from_bytes(fixture_raw[201])
    block.txs[0].inputs[0].witness = [bytes(31)]
    assert_rejected(fix201_cs, solve(block), "bad-witness-nonce-size")


def test_unexpected_witness(fix201_cs, fixture_raw):
    block = Block.from_bytes(fixture_raw[201])
    block.txs[0].outputs.pop()  # drop the commitment; the spends still carry witnesses
    block.txs[0].inputs[0].witness = ()
    assert_rejected(fix201_cs, solve(block), "unexpected-witness")


def test_bad_bip34_height(fix201_cs, fixture_raw):
    block = Block.from_bytes(fixture_raw[201])
    cb = block.txs[0]
    cb.inputs[0].script_sig = b"\x01\x05" + cb.inputs[0].script_sig[2:]
    # The coinbase changed, so its wtxid is not in the commitment; redo the commitment.
    cb.invalidate()
    from tests.unit.chainstate.blocktools import add_witness_commitment

    cb.outputs.pop()
    add_witness_commitment(block)
    assert_rejected(fix201_cs, solve(block), "bad-cb-height")


def test_oversized_block(ext_cs):
    tip = _tip(ext_cs)
    block = make_block(tip)
    block.txs[0].outputs.append(TxOut(0, b"\x6a" + bytes(1_000_100)))
    assert_rejected(ext_cs, solve(block), "bad-blk-length")


def test_coinbase_pays_too_much(ext_cs):
    tip = _tip(ext_cs)
    block = make_block(tip)
    block.txs[0].outputs[0].value += 1
    assert_rejected(ext_cs, solve(block), "bad-cb-amount")


def test_coinbase_may_claim_fees(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 207)
    spend = spend_tx([op], [value - 1000])
    block = make_block(_tip(ext_cs), [spend], fees=1000)
    assert ext_cs.process_block(block).status is BlockStatus.ACCEPTED
    assert ext_cs.get_utxo(op) is None
    assert ext_cs.get_utxo(outpoint(spend.txid, 0)).amount == value - 1000


def test_double_spend_in_one_block(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 207)
    a = spend_tx([op], [value - 1])
    b = spend_tx([op], [value - 2])
    block = make_block(_tip(ext_cs), [a, b], fees=3)
    assert_rejected(ext_cs, block, "bad-txns-inputs-missingorspent")


def test_double_spend_across_blocks(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 207)
    first = make_block(_tip(ext_cs), [spend_tx([op], [value])])
    assert ext_cs.process_block(first).status is BlockStatus.ACCEPTED
    second = make_block(_tip(ext_cs), [spend_tx([op], [value - 5])], fees=5)
    assert_rejected(ext_cs, second, "bad-txns-inputs-missingorspent")


def test_overspend(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 208)
    block = make_block(_tip(ext_cs), [spend_tx([op], [value + 1])])
    assert_rejected(ext_cs, block, "bad-txns-in-belowout")


def test_immature_coinbase_spend(ext_cs, extended_raw):
    # The next block is 317: a coinbase from 218 has 99 confirmations, one short.
    op, value = _cb_out(extended_raw, 218)
    block = make_block(_tip(ext_cs), [spend_tx([op], [value])])
    assert_rejected(ext_cs, block, "bad-txns-premature-spend-of-coinbase")
    op, value = _cb_out(extended_raw, 217)
    block = make_block(_tip(ext_cs), [spend_tx([op], [value])])
    assert ext_cs.process_block(block).status is BlockStatus.ACCEPTED


def test_missing_input(ext_cs):
    block = make_block(_tip(ext_cs), [spend_tx([b"\x11" * 32 + b"\x00" * 4], [1])])
    assert_rejected(ext_cs, block, "bad-txns-inputs-missingorspent")


def test_script_failure(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 209)
    lock = spend_tx([op], [value], script=b"\x52\x87")  # OP_2 OP_EQUAL
    b1 = make_block(_tip(ext_cs), [lock])
    assert ext_cs.process_block(b1).status is BlockStatus.ACCEPTED
    bad = spend_tx([outpoint(lock.txid, 0)], [value])
    bad.inputs[0].script_sig = b"\x51"  # pushes 1, not 2
    assert_rejected(ext_cs, make_block(_tip(ext_cs), [bad]), "block-script-verify-flag-failed")
    good = spend_tx([outpoint(lock.txid, 0)], [value])
    good.inputs[0].script_sig = b"\x52"
    assert ext_cs.process_block(make_block(_tip(ext_cs), [good])).status is BlockStatus.ACCEPTED


def test_bip68_relative_height_lock(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 210)
    parent = spend_tx([op], [value])
    b1 = make_block(_tip(ext_cs), [parent])
    assert ext_cs.process_block(b1).status is BlockStatus.ACCEPTED
    child_op = outpoint(parent.txid, 0)
    # Coin confirmed at 317; sequence 3 means spendable from height 317 + 3 = 320.
    child = spend_tx([child_op], [value], sequence=3)
    assert_rejected(ext_cs, make_block(_tip(ext_cs), [child]), "bad-txns-nonfinal")
    # version 1 transactions do not enforce BIP68
    v1 = spend_tx([child_op], [value], sequence=3, version=1)
    tip = _tip(ext_cs)
    assert ext_cs.process_block(make_block(tip, [v1])).status is BlockStatus.ACCEPTED


def test_bip68_lock_satisfied_after_blocks(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 211)
    parent = spend_tx([op], [value])
    assert ext_cs.process_block(make_block(_tip(ext_cs), [parent])).status is BlockStatus.ACCEPTED
    for _ in range(2):
        assert ext_cs.process_block(make_block(_tip(ext_cs))).status is BlockStatus.ACCEPTED
    child = spend_tx([outpoint(parent.txid, 0)], [value], sequence=3)
    assert ext_cs.process_block(make_block(_tip(ext_cs), [child])).status is BlockStatus.ACCEPTED


def test_bip68_time_lock_uses_median_time_past(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 212)
    parent = spend_tx([op], [value])
    assert ext_cs.process_block(make_block(_tip(ext_cs), [parent])).status is BlockStatus.ACCEPTED
    # Time lock of 1 unit = 512 s; blocks here are 1 s apart, so it cannot be met yet.
    child = spend_tx([outpoint(parent.txid, 0)], [value], sequence=(1 << 22) | 1)
    assert_rejected(ext_cs, make_block(_tip(ext_cs), [child]), "bad-txns-nonfinal")
    # The lock needs MTP(parent of the spending block) > MTP(316) + 511; fifteen blocks
    # 100 s apart get there (ten would leave the median at +501 s, still locked).
    for i in range(15):
        blk = make_block(_tip(ext_cs), time_delta=100)
        assert ext_cs.process_block(blk).status is BlockStatus.ACCEPTED
        if i == 9:  # median at +501 s: one block short, still locked
            assert_rejected(ext_cs, make_block(_tip(ext_cs), [child]), "bad-txns-nonfinal")
    assert ext_cs.process_block(make_block(_tip(ext_cs), [child])).status is BlockStatus.ACCEPTED


def test_nonfinal_locktime(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 213)
    tx = spend_tx([op], [value], sequence=0, locktime=EXT_TIP_HEIGHT + 5)
    assert_rejected(ext_cs, make_block(_tip(ext_cs), [tx]), "bad-txns-nonfinal")
    tx = spend_tx([op], [value], sequence=0, locktime=EXT_TIP_HEIGHT)
    assert ext_cs.process_block(make_block(_tip(ext_cs), [tx])).status is BlockStatus.ACCEPTED


def test_bip30_duplicate_transaction(ext_cs, extended_raw):
    op, value = _cb_out(extended_raw, 214)
    tx = spend_tx([op], [value])
    assert ext_cs.process_block(make_block(_tip(ext_cs), [tx])).status is BlockStatus.ACCEPTED
    again = spend_tx([op], [value])
    assert again.txid == tx.txid
    assert_rejected(ext_cs, make_block(_tip(ext_cs), [again]), "bad-txns-BIP30")


def test_second_coinbase(ext_cs):
    extra_cb = coinbase_tx(EXT_TIP_HEIGHT + 1, 1)
    assert_rejected(ext_cs, make_block(_tip(ext_cs), [extra_cb]), "bad-cb-multiple")


def test_invalid_block_is_remembered_and_children_refused(ext_cs, extended_raw):
    tip = _tip(ext_cs)
    bad = make_block(tip)
    bad.txs[0].outputs[0].value += 1
    bad = solve(bad)
    assert_rejected(ext_cs, bad, "bad-cb-amount")
    again = ext_cs.process_block(bad)
    assert again.status is BlockStatus.INVALID
    child = make_block(Tip(bad.hash, tip.height + 1, bad.header.time))
    assert_rejected(ext_cs, child, "bad-prevblk")


def test_subsidy_schedule_applies(ext_cs):
    # Height 317 is past the second regtest halving (300): 12.5 BTC.
    assert block_subsidy(EXT_TIP_HEIGHT + 1, REGTEST) == 1_250_000_000
    block = copy_block(make_block(_tip(ext_cs)))
    assert block.txs[0].outputs[0].value == 1_250_000_000
    assert ext_cs.process_block(block).status is BlockStatus.ACCEPTED


def test_block_weight_limit_counts_witness_data(fixture_raw):
    """Base size fits 1 MB but witness bytes push weight past 4M: bad-blk-weight."""
    from node.chain.validation import contextual_check_block
    from tests.unit.chainstate.blocktools import add_witness_commitment

    block = Block.from_bytes(fixture_raw[201])
    block.txs[1].inputs[0].witness = [bytes(4_100_000)]
    block.txs[0].outputs.pop()
    add_witness_commitment(block)
    block = solve(block)
    assert block.base_size * 4 <= 4_000_000 < block.weight
    with pytest.raises(ConsensusError) as err:
        contextual_check_block(block, REGTEST, 202, 0)
    assert err.value.reason == "bad-blk-weight"


def test_mainnet_block_413567_context_free_checks(core_vectors):
    from node.chain.params import MAINNET
    from node.chain.txcheck import check_transaction
    from node.chain.validation import check_block

    raw = (core_vectors / "block413567.raw").read_bytes()
    checked = check_block(Block.from_bytes(raw), MAINNET, check_transaction)
    assert len(checked.legacy_sigops) == 1557
    swapped = Block.from_bytes(raw)
    swapped.txs[1], swapped.txs[2] = swapped.txs[2], swapped.txs[1]
    with pytest.raises(ConsensusError) as err:
        check_block(swapped, MAINNET, check_transaction, check_pow=True)
    assert err.value.reason == "bad-txnmrklroot"
    retargeted = Block.from_bytes(raw)
    retargeted.header.bits = 0x1B00FFFF  # new header hash, the old nonce misses the target
    with pytest.raises(ConsensusError) as err:
        check_block(retargeted, MAINNET, check_transaction)
    assert err.value.reason == "high-hash"

"""check_transaction: every CheckTransaction rule with Core's reason, boundaries included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain import errors as E
from node.chain.errors import ConsensusError, bad_version, script_verify_failed
from node.chain.params import MAX_MONEY
from node.chain.txcheck import check_transaction
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut, outpoint

OP = outpoint(b"\x01" * 32, 0)


def _tx(inputs=None, outputs=None) -> Tx:
    return Tx(
        2,
        [TxIn(OP, b"")] if inputs is None else inputs,
        [TxOut(1000, b"\x51")] if outputs is None else outputs,
    )


def _reason(tx: Tx) -> str | None:
    try:
        check_transaction(tx)
    except ConsensusError as exc:
        assert exc.header_invalid
        return exc.reason
    return None


def test_chain_txcheck_reasons() -> None:
    assert _reason(_tx()) is None
    assert _reason(_tx(inputs=[])) == E.BAD_TXNS_VIN_EMPTY
    assert _reason(_tx(outputs=[])) == E.BAD_TXNS_VOUT_EMPTY
    assert _reason(_tx(inputs=[], outputs=[])) == E.BAD_TXNS_VIN_EMPTY  # Core's order
    assert _reason(_tx(outputs=[TxOut(-1, b"")])) == E.BAD_TXNS_VOUT_NEGATIVE
    assert _reason(_tx(outputs=[TxOut(MAX_MONEY, b"")])) is None
    assert _reason(_tx(outputs=[TxOut(MAX_MONEY + 1, b"")])) == E.BAD_TXNS_VOUT_TOOLARGE
    two = [TxOut(MAX_MONEY // 2 + 1, b""), TxOut(MAX_MONEY // 2 + 1, b"")]
    assert _reason(_tx(outputs=two)) == E.BAD_TXNS_TXOUTTOTAL_TOOLARGE
    dup = [TxIn(OP, b""), TxIn(outpoint(b"\x02" * 32, 0)), TxIn(OP, b"\x51")]
    assert _reason(_tx(inputs=dup)) == E.BAD_TXNS_INPUTS_DUPLICATE
    null_in = [TxIn(OP), TxIn(NULL_OUTPOINT, b"\x51\x51")]
    assert _reason(_tx(inputs=null_in)) == E.BAD_TXNS_PREVOUT_NULL
    # a lone input with only the index null is not a coinbase, and not null either
    assert _reason(_tx(inputs=[TxIn(b"\x00" * 32 + b"\x00\x00\x00\x00")])) is None


@pytest.mark.parametrize(
    ("length", "ok"), [(0, False), (1, False), (2, True), (100, True), (101, False)]
)
def test_chain_txcheck_coinbase_script_length(length: int, ok: bool) -> None:
    tx = _tx(inputs=[TxIn(NULL_OUTPOINT, b"\x51" * length)])
    assert tx.is_coinbase()
    assert _reason(tx) == (None if ok else E.BAD_CB_LENGTH)


def test_chain_txcheck_oversize() -> None:
    # base size * 4 > 4,000,000 weight units
    big = _tx(outputs=[TxOut(0, b"\x6a" + b"\x00" * 1_000_000)])
    assert _reason(big) == E.BAD_TXNS_OVERSIZE
    ok = _tx(outputs=[TxOut(0, b"\x6a" + b"\x00" * 990_000)])
    assert _reason(ok) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=1, max_size=6))
def test_chain_txcheck_output_values_property(values: list[int]) -> None:
    reason = _reason(_tx(outputs=[TxOut(v, b"") for v in values]))
    running, expected = 0, None
    for v in values:
        if v < 0:
            expected = E.BAD_TXNS_VOUT_NEGATIVE
            break
        if v > MAX_MONEY:
            expected = E.BAD_TXNS_VOUT_TOOLARGE
            break
        running += v
        if running > MAX_MONEY:
            expected = E.BAD_TXNS_TXOUTTOTAL_TOOLARGE
            break
    assert reason == expected


def test_chain_errors_reason_helpers() -> None:
    assert bad_version(1) == "bad-version(0x00000001)"
    assert bad_version(-1) == "bad-version(0xffffffff)"
    assert script_verify_failed("tx 1 input 0") == "block-script-verify-flag-failed (tx 1 input 0)"
    err = ConsensusError(E.BAD_TXNMRKLROOT, "hashMerkleRoot mismatch")
    assert not err.header_invalid and str(err) == "bad-txnmrklroot: hashMerkleRoot mismatch"
    assert ConsensusError(E.HIGH_HASH).header_invalid
    assert not ConsensusError(E.HIGH_HASH, header_invalid=False).header_invalid
    assert ConsensusError(
        E.TIME_TOO_NEW, block_hash=b"\x01" + b"\x00" * 31, height=5
    ).to_dict() == {
        "reason": "time-too-new",
        "message": "",
        "height": 5,
        "hash": "00" * 31 + "01",
    }

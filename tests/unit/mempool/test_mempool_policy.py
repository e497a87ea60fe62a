"""Standardness rules as pure functions (Core's policy.cpp values)."""

from __future__ import annotations

import threading

import pytest

from node.mempool.errors import Rejected
from node.mempool.policy import (
    check_inputs_standard,
    check_standard_tx,
    check_witness_standard,
    dust_threshold,
    fee_at,
)
from protocols.bitcoin.script import (
    multisig_script,
    null_data_script,
    p2pkh_script,
    p2sh_script,
    p2tr_script,
    p2wpkh_script,
    p2wsh_script,
)
from protocols.bitcoin.tx import Tx, TxIn, TxOut
from tests.unit.mempool.mempool_tools import mine, spend

KEY = bytes.fromhex("02" + "11" * 32)


@pytest.mark.parametrize(
    ("script", "threshold"),
    [
        (p2pkh_script(b"\x00" * 20), 546),
        (p2sh_script(b"\x00" * 20), 540),
        (p2wpkh_script(b"\x00" * 20), 294),
        (p2wsh_script(b"\x00" * 32), 330),
        (p2tr_script(b"\x00" * 32), 330),
        (null_data_script(b"hello"), 0),
    ],
)
def test_dust_thresholds_match_core(script, threshold):
    assert dust_threshold(TxOut(0, script)) == threshold


def test_fee_rounding_up():
    assert fee_at(1000, 141) == 141
    assert fee_at(1500, 141) == 212  # 211.5 rounds up
    assert fee_at(0, 500) == 0


def _tx(outputs, script_sig=b"", witness=()) -> Tx:
    txin = TxIn(b"\x01" * 32 + b"\x00\x00\x00\x00", script_sig, 0xFFFFFFFD)
    txin.witness = list(witness)
    return Tx(2, [txin], outputs, 0)


def _reason(fn, *args, **kwargs) -> str | None:
    try:
        fn(*args, **kwargs)
    except Rejected as exc:
        return exc.reason
    return None


def test_multisig_and_data_carrier_rules():
    pay = TxOut(10_000, p2wpkh_script(b"\x01" * 20))
    keys = [KEY] * 3
    assert _reason(check_standard_tx, _tx([pay, TxOut(1_000, multisig_script(2, keys))])) is None
    four = multisig_script(1, [KEY] * 4)
    assert _reason(check_standard_tx, _tx([pay, TxOut(1_000, four)])) == "scriptpubkey"
    ms = _tx([pay, TxOut(1_000, multisig_script(1, [KEY]))])
    assert _reason(check_standard_tx, ms, permit_bare_multisig=False) == "bare-multisig"
    two_returns = _tx([pay, TxOut(0, null_data_script(b"a" * 80)), TxOut(0, b"\x6a")])
    assert _reason(check_standard_tx, two_returns) is None  # Core 30: several allowed
    assert _reason(check_standard_tx, two_returns, max_datacarrier_bytes=80) == "datacarrier"
    assert _reason(check_standard_tx, _tx([pay], script_sig=b"\x00" * 1651)) == "scriptsig-size"


def test_witness_standardness():
    wsh = p2wsh_script(b"\x00" * 32)
    ok = _tx([TxOut(1, b"")], witness=[b"\x01" * 80, b"\x51"])
    assert _reason(check_witness_standard, ok, [wsh]) is None
    big_item = _tx([TxOut(1, b"")], witness=[b"\x01" * 81, b"\x51"])
    assert _reason(check_witness_standard, big_item, [wsh]) == "bad-witness-nonstandard"
    big_script = _tx([TxOut(1, b"")], witness=[b"\x51" * 3_601])
    assert _reason(check_witness_standard, big_script, [wsh]) == "bad-witness-nonstandard"
    on_legacy = _tx([TxOut(1, b"")], witness=[b"\x01"])
    assert _reason(check_witness_standard, on_legacy, [p2pkh_script(b"\x00" * 20)]) == (
        "bad-witness-nonstandard"
    )
    tapscript = _tx([TxOut(1, b"")], witness=[b"\x01" * 81, b"\x51", b"\xc0" + b"\x00" * 32])
    assert _reason(check_witness_standard, tapscript, [p2tr_script(b"\x00" * 32)]) == (
        "bad-witness-nonstandard"
    )


def test_p2sh_redeem_script_sigops():
    redeem = b"\xac" * 16  # 16 CHECKSIGs > 15
    tx = _tx([TxOut(1, b"")], script_sig=bytes([len(redeem)]) + redeem)
    spk = p2sh_script(b"\x00" * 20)
    assert _reason(check_inputs_standard, tx, [spk]) == "bad-txns-nonstandard-inputs"
    small = _tx([TxOut(1, b"")], script_sig=b"\x02\xac\xac")
    assert _reason(check_inputs_standard, small, [spk]) is None
    unknown_witness = b"\x52\x20" + b"\x00" * 32  # witness v2 outputs are not spendable
    assert _reason(check_inputs_standard, small, [unknown_witness]) == (
        "bad-txns-nonstandard-inputs"
    )


def test_concurrent_accepts_while_blocks_connect(env):
    """RPC-style threads accept while the chain thread connects blocks: no deadlock, no loss."""
    batches = [[spend([c], 1)[0] for c in env.mature(8)] for _ in range(2)]
    results: list = []

    def worker(txs):
        for tx in txs:
            results.append(env.pool.accept(tx))

    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for i in range(4):
        mine(env.chain, [], extra=b"thr" + bytes([i]))
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert len(results) == 16 and all(r.accepted for r in results)
    assert len(env.pool) == 16

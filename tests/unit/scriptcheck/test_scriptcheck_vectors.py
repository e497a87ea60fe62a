"""Bitcoin Core's script and transaction vectors through our checks and the kernel interpreter.

Only consensus flags reach the kernel, so each file is tested on its consensus subset:
- tx_valid.json: every row must pass CheckTransaction and all input scripts with the
  consensus flags that the row does not exclude;
- tx_invalid.json: BADTX rows must fail ``check_transaction``; other rows whose flags are all
  consensus flags must pass it and fail at least one input script;
- script_tests.json: rows whose flags are all consensus flags; pass/fail must match "OK".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coincurve.keys import PublicKeyXOnly

from node.chain.errors import ConsensusError
from node.chain.params import ScriptFlag
from node.chain.scriptcheck import CONSENSUS_FLAGS, verify_input, verify_tx
from node.chain.txcheck import check_transaction
from protocols.bitcoin.compact import compact_size
from protocols.bitcoin.hashes import tagged_hash
from protocols.bitcoin.script_asm import parse_asm
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut, outpoint

CONSENSUS_NAMES = {f.name: int(f) for f in ScriptFlag if f.name not in ("NONE", "ALL")}


def _rows(path: Path) -> list[list]:
    return [r for r in json.loads(path.read_text()) if not (len(r) == 1 and isinstance(r[0], str))]


def _flag_words(text: str) -> set[str]:
    return {w for w in text.split(",") if w and w != "NONE"}


def _consensus_bits(words: set[str]) -> int:
    return sum(CONSENSUS_NAMES[w] for w in words if w in CONSENSUS_NAMES)


def _spent_outputs(prevouts: list[list], tx: Tx) -> list[TxOut]:
    table = {}
    for row in prevouts:
        txid = bytes.fromhex(row[0])[::-1]
        index = row[1] & 0xFFFFFFFF  # -1 in the vectors means the null index
        amount = row[3] if len(row) > 3 else 0
        table[outpoint(txid, index)] = TxOut(amount, parse_asm(row[2]))
    return [table[txin.prevout] for txin in tx.inputs]


def _tx_rows(core_vectors: Path, name: str) -> list[list]:
    return _rows(core_vectors / name)


def test_scriptcheck_tx_valid(core_vectors: Path) -> None:
    rows = _tx_rows(core_vectors, "tx_valid.json")
    assert len(rows) > 100
    for prevouts, tx_hex, excluded in rows:
        tx = Tx.from_hex(tx_hex)
        check_transaction(tx)
        flags = CONSENSUS_FLAGS & ~_consensus_bits(_flag_words(excluded))
        spent = _spent_outputs(prevouts, tx)
        assert verify_tx(tx.serialize(), spent, flags) is None, (tx_hex, excluded)


def test_scriptcheck_tx_invalid(core_vectors: Path) -> None:
    rows = _tx_rows(core_vectors, "tx_invalid.json")
    badtx: list[str] = []
    scripts = 0
    for prevouts, tx_hex, flag_text in rows:
        words = _flag_words(flag_text)
        if "BADTX" in words:
            with pytest.raises(ConsensusError) as info:
                check_transaction(Tx.from_hex(tx_hex))
            badtx.append(info.value.reason)
            continue
        if not words <= CONSENSUS_NAMES.keys():
            continue  # needs policy flags to fail
        tx = Tx.from_hex(tx_hex)
        check_transaction(tx)
        flags = _consensus_bits(words)
        if flags & ScriptFlag.WITNESS:
            flags |= ScriptFlag.P2SH  # Core's FillFlags: WITNESS implies P2SH
        spent = _spent_outputs(prevouts, tx)
        assert verify_tx(tx.serialize(), spent, flags) is not None, (tx_hex, flag_text)
        scripts += 1
    assert sorted(set(badtx)) == [
        "bad-cb-length",
        "bad-txns-inputs-duplicate",
        "bad-txns-prevout-null",
        "bad-txns-txouttotal-toolarge",
        "bad-txns-vout-empty",
        "bad-txns-vout-negative",
        "bad-txns-vout-toolarge",
    ]
    assert len(badtx) == 9 and scripts >= 60, (badtx, scripts)


def _credit_spend(script_sig: bytes, script_pubkey: bytes, witness: list[bytes], amount: int):
    """Core's BuildCreditingTransaction / BuildSpendingTransaction."""
    credit = Tx(1, [TxIn(NULL_OUTPOINT, b"\x00\x00")], [TxOut(amount, script_pubkey)], 0)
    spend = Tx(
        1,
        [TxIn(outpoint(credit.txid, 0), script_sig, 0xFFFFFFFF, list(witness))],
        [TxOut(amount, b"")],
        0,
    )
    return credit, spend


# Core's script_tests build tapscript rows on this NUMS internal key (XOnlyPubKey::NUMS_H).
NUMS_H = bytes.fromhex("50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")
TAPSCRIPT_LEAF = 0xC0


def _taproot_single_leaf(script: bytes) -> tuple[bytes, bytes]:
    """(output key, control block) for a tree holding one tapscript leaf (BIP341)."""
    leaf = tagged_hash("TapLeaf", bytes((TAPSCRIPT_LEAF,)) + compact_size(len(script)) + script)
    key = PublicKeyXOnly(NUMS_H)
    key.tweak_add(tagged_hash("TapTweak", NUMS_H + leaf))
    return key.format(), bytes((TAPSCRIPT_LEAF | int(key.parity),)) + NUMS_H


def _witness_items(items: list[str]) -> tuple[list[bytes], bytes | None]:
    """Decode a row's witness; ``#SCRIPT#``/``#CONTROLBLOCK#`` placeholders as Core expands them."""
    script = next((parse_asm(w[9:]) for w in items if w.startswith("#SCRIPT#")), None)
    if script is None:
        return [bytes.fromhex(w) for w in items], None
    output_key, control = _taproot_single_leaf(script)
    out = []
    for w in items:
        if w.startswith("#SCRIPT#"):
            out.append(script)
        elif w == "#CONTROLBLOCK#":
            out.append(control)
        else:
            out.append(bytes.fromhex(w))
    return out, output_key


def _script_rows(core_vectors: Path) -> list[tuple[bool, bool, list]]:
    results = []
    for row in _rows(core_vectors / "script_tests.json"):
        witness: list[bytes] = []
        amount = 0
        output_key = None
        if isinstance(row[0], list):
            *items, btc = row[0]
            witness, output_key = _witness_items(items)
            amount = round(btc * 100_000_000)
            row = row[1:]
        script_sig_asm, script_pubkey_asm, flag_text, expected = row[:4]
        if output_key is not None:
            script_pubkey_asm = script_pubkey_asm.replace(
                "#TAPROOTOUTPUT#", "0x" + output_key.hex()
            )
        words = _flag_words(flag_text)
        if not words <= CONSENSUS_NAMES.keys():
            continue
        flags = _consensus_bits(words)
        if flags & ScriptFlag.WITNESS and not flags & ScriptFlag.P2SH:
            continue  # Core's interpreter asserts on this combination
        credit, spend = _credit_spend(
            parse_asm(script_sig_asm), parse_asm(script_pubkey_asm), witness, amount
        )
        ok = verify_input(spend.serialize(), 0, [credit.outputs[0]], flags)
        results.append((ok, expected == "OK", row))
    return results


def test_scriptcheck_script_tests_consensus_subset(core_vectors: Path) -> None:
    results = _script_rows(core_vectors)
    assert len(results) == 240  # the consensus-flag rows of the 1,222 (others need policy flags)
    mismatches = [row for ok, want, row in results if ok != want]
    assert not mismatches, mismatches[:5]
    assert sum(1 for ok, _, _ in results if ok) == 154
    taproot = [row for _, _, row in results if "#TAPROOTOUTPUT#" in row[1]]
    assert len(taproot) == 5  # the tapscript rows really ran

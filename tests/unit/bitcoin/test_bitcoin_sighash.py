"""Signature hashes against Core's vectors, the BIP341 vectors and the kernel as oracle."""

from __future__ import annotations

import json

import coincurve
import pbk
import pytest

from protocols.bitcoin import script as S
from protocols.bitcoin.block import Block
from protocols.bitcoin.hashes import hash160, sha256d
from protocols.bitcoin.sighash import (
    ONE_HASH,
    PrecomputedTxData,
    SigHash,
    SighashError,
    legacy_sighash,
    p2wpkh_script_code,
    segwit_v0_sighash,
    taproot_sighash,
    taproot_sigmsg,
)
from protocols.bitcoin.taproot import (
    TapLeaf,
    control_block,
    taproot_output_key,
    tree_hash_and_paths,
    tweak_private_key,
)
from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint


def test_core_sighash_vectors(core_vectors):
    rows = json.loads((core_vectors / "sighash.json").read_text())[1:]
    assert len(rows) == 500
    for raw, script_hex, index, hash_type, expected in rows:
        tx = Tx.from_hex(raw)
        digest = legacy_sighash(tx, index, bytes.fromhex(script_hex), hash_type)
        assert digest[::-1].hex() == expected, (raw, index, hash_type)


def _simple_tx(n_in: int = 2, n_out: int = 1) -> Tx:
    inputs = [TxIn(outpoint(bytes([i + 1]) * 32, i), b"", 0xFFFFFFFE) for i in range(n_in)]
    outputs = [TxOut(1000 + i, S.p2wpkh_script(bytes([i]) * 20)) for i in range(n_out)]
    return Tx(2, inputs, outputs, 0)


def test_legacy_quirks():
    tx = _simple_tx(2, 1)
    assert legacy_sighash(tx, 1, b"\x51", SigHash.SINGLE) == ONE_HASH
    assert legacy_sighash(tx, 5, b"\x51", SigHash.ALL) == ONE_HASH
    # OP_CODESEPARATORs are not part of the hashed script code
    with_sep = legacy_sighash(tx, 0, b"\x51\xab\x52\xab", SigHash.ALL)
    assert with_sep == legacy_sighash(tx, 0, b"\x51\x52", SigHash.ALL)
    # but a 0xab inside a push is data, not a separator
    assert legacy_sighash(tx, 0, b"\x01\xab", 1) != legacy_sighash(tx, 0, b"\x01", 1)


def test_bip341_key_path_vectors(core_vectors):
    data = json.loads((core_vectors / "bip341_wallet_vectors.json").read_text())
    checked = 0
    for case in data["keyPathSpending"]:
        tx = Tx.from_hex(case["given"]["rawUnsignedTx"])
        spent = [
            TxOut(u["amountSats"], bytes.fromhex(u["scriptPubKey"]))
            for u in case["given"]["utxosSpent"]
        ]
        pre = PrecomputedTxData(tx, spent)
        im = case["intermediary"]
        assert pre.sha_amounts.hex() == im["hashAmounts"]
        assert pre.sha_outputs.hex() == im["hashOutputs"]
        assert pre.sha_prevouts.hex() == im["hashPrevouts"]
        assert pre.sha_scriptpubkeys.hex() == im["hashScriptPubkeys"]
        assert pre.sha_sequences.hex() == im["hashSequences"]
        for spend in case["inputSpending"]:
            g, mid, exp = spend["given"], spend["intermediary"], spend["expected"]
            index, hash_type = g["txinIndex"], g["hashType"]
            root = bytes.fromhex(g["merkleRoot"]) if g["merkleRoot"] else None
            msg = taproot_sigmsg(tx, index, spent, hash_type, precomputed=pre)
            assert msg.hex() == mid["sigMsg"]
            digest = taproot_sighash(tx, index, spent, hash_type)
            assert digest.hex() == mid["sigHash"]
            tweaked = tweak_private_key(bytes.fromhex(g["internalPrivkey"]), root)
            assert tweaked.hex() == mid["tweakedPrivkey"]
            sig = coincurve.PrivateKey(tweaked).sign_schnorr(digest, bytes(32))
            if hash_type:
                sig += bytes((hash_type,))
            assert [sig.hex()] == exp["witness"]
            tx.inputs[index].witness = [sig]
            checked += 1
        # With every witness filled in, the kernel must accept each signed input.
        tx.invalidate()
        ktx = pbk.Transaction(tx.serialize())
        kspent = [pbk.TransactionOutput(pbk.ScriptPubkey(o.script_pubkey), o.value) for o in spent]
        kpre = pbk.script.PrecomputedTransactionData(ktx, kspent)
        for spend in case["inputSpending"]:
            i = spend["given"]["txinIndex"]
            assert pbk.ScriptPubkey(spent[i].script_pubkey).verify(
                spent[i].value, ktx, kpre, i, pbk.ScriptVerificationFlags.ALL
            )
    assert checked == 7


def test_bip341_script_pubkey_vectors(core_vectors):
    from protocols.bitcoin.address import script_to_address
    from protocols.bitcoin.taproot import taproot_tweak

    def tree_of(node):
        if node is None:
            return None
        if isinstance(node, dict):
            return TapLeaf(bytes.fromhex(node["script"]), node["leafVersion"])
        return (tree_of(node[0]), tree_of(node[1]))

    data = json.loads((core_vectors / "bip341_wallet_vectors.json").read_text())
    for case in data["scriptPubKey"]:
        g, mid, exp = case["given"], case["intermediary"], case["expected"]
        internal = bytes.fromhex(g["internalPubkey"])
        tree = tree_of(g["scriptTree"])
        root, paths = tree_hash_and_paths(tree) if tree is not None else (None, [])
        assert (root.hex() if root else None) == mid["merkleRoot"]
        assert taproot_tweak(internal, root).hex() == mid["tweak"]
        key, parity = taproot_output_key(internal, root)
        assert key.hex() == mid["tweakedPubkey"]
        spk = S.p2tr_script(key)
        assert spk.hex() == exp["scriptPubKey"]
        assert script_to_address(spk, "mainnet") == exp["bip350Address"]
        if tree is not None:
            assert [leaf.hash.hex() for leaf, _ in paths] == mid["leafHashes"]
            blocks = [control_block(internal, parity, leaf.leaf_version, p) for leaf, p in paths]
            assert [b.hex() for b in blocks] == exp["scriptPathControlBlocks"]


def test_regtest_chain_p2wpkh_signatures_verify(core_vectors):
    """Real ECDSA signatures in the regtest fixture verify against our BIP143 digests."""
    lines = (core_vectors / "regtest_blocks_1_206.txt").read_text().split()
    utxos: dict[bytes, TxOut] = {}
    verified = 0
    for line in lines:
        for tx in Block.from_hex(line).txs:
            if not tx.is_coinbase():
                pre = PrecomputedTxData(tx)
                for i, txin in enumerate(tx.inputs):
                    prev = utxos[txin.prevout]
                    kind, sol = S.classify(prev.script_pubkey)
                    assert kind is S.ScriptType.WITNESS_V0_KEYHASH
                    sig, pub = txin.witness
                    assert hash160(pub) == sol[0]
                    digest = segwit_v0_sighash(
                        tx, i, p2wpkh_script_code(sol[0]), prev.value, sig[-1], pre
                    )
                    assert coincurve.PublicKey(pub).verify(sig[:-1], digest, hasher=None)
                    wrong = segwit_v0_sighash(
                        tx, i, p2wpkh_script_code(sol[0]), prev.value + 1, sig[-1]
                    )
                    assert not coincurve.PublicKey(pub).verify(sig[:-1], wrong, hasher=None)
                    verified += 1
            for n, out in enumerate(tx.outputs):
                utxos[outpoint(tx.txid, n)] = out
    assert verified == 26


# -- signing our own transactions, the kernel as judge -------------------------------------------

SECRET = bytes.fromhex("11" * 32)
PRIV = coincurve.PrivateKey(SECRET)
PUB = PRIV.public_key.format(compressed=True)
XONLY = PUB[1:]


def _kernel_verify(tx: Tx, spent: list[TxOut], index: int) -> bool:
    ktx = pbk.Transaction(tx.serialize())
    kspent = [pbk.TransactionOutput(pbk.ScriptPubkey(o.script_pubkey), o.value) for o in spent]
    kpre = pbk.script.PrecomputedTransactionData(ktx, kspent)
    try:
        return pbk.ScriptPubkey(spent[index].script_pubkey).verify(
            spent[index].value, ktx, kpre, index, pbk.ScriptVerificationFlags.ALL
        )
    except pbk.ScriptVerifyException:
        return False


def _spending_tx(spent: list[TxOut]) -> Tx:
    inputs = [
        TxIn(outpoint(sha256d(bytes([i])), i), b"", 0xFFFFFFFD - i) for i in range(len(spent))
    ]
    outputs = [TxOut(10_000 + i, S.p2wpkh_script(bytes([i + 7]) * 20)) for i in range(len(spent))]
    return Tx(2, inputs, outputs, 99)


def _ecdsa(digest: bytes, hash_type: int) -> bytes:
    return PRIV.sign(digest, hasher=None) + bytes((hash_type,))


LEGACY_TYPES = [1, 2, 3, 0x81, 0x82, 0x83]


@pytest.mark.parametrize("hash_type", LEGACY_TYPES)
def test_legacy_p2pkh_signature_accepted_by_kernel(hash_type):
    spk = S.p2pkh_script(hash160(PUB))
    spent = [TxOut(50_000, spk), TxOut(60_000, spk)]
    tx = _spending_tx(spent)
    for i in range(2):
        digest = legacy_sighash(tx, i, spk, hash_type)
        tx.inputs[i].script_sig = S.push_data(_ecdsa(digest, hash_type)) + S.push_data(PUB)
    tx.invalidate()
    assert _kernel_verify(tx, spent, 0) and _kernel_verify(tx, spent, 1)
    tx.inputs[1].sequence ^= 1  # input 0 commits to input 1's sequence only with ALL
    tx.invalidate()
    assert _kernel_verify(tx, spent, 0) == (hash_type & 0x1F in (2, 3) or hash_type & 0x80 != 0)


@pytest.mark.parametrize("hash_type", LEGACY_TYPES)
def test_segwit_v0_signatures_accepted_by_kernel(hash_type):
    h = hash160(PUB)
    p2wpkh = S.p2wpkh_script(h)
    p2sh_p2wpkh = S.p2sh_script(hash160(p2wpkh))
    ws = S.multisig_script(1, [PUB])
    p2wsh = S.p2wsh_script(coincurve.utils.sha256(ws))
    spent = [TxOut(70_000, p2wpkh), TxOut(80_000, p2sh_p2wpkh), TxOut(90_000, p2wsh)]
    tx = _spending_tx(spent)
    pre = PrecomputedTxData(tx)
    code = p2wpkh_script_code(h)
    tx.inputs[0].witness = [
        _ecdsa(segwit_v0_sighash(tx, 0, code, 70_000, hash_type, pre), hash_type),
        PUB,
    ]
    tx.inputs[1].script_sig = S.push_data(p2wpkh)
    tx.inputs[1].witness = [
        _ecdsa(segwit_v0_sighash(tx, 1, code, 80_000, hash_type, pre), hash_type),
        PUB,
    ]
    tx.inputs[2].witness = [
        b"",
        _ecdsa(segwit_v0_sighash(tx, 2, ws, 90_000, hash_type), hash_type),
        ws,
    ]
    tx.invalidate()
    assert all(_kernel_verify(tx, spent, i) for i in range(3))
    # the amount is committed: claiming another value fails
    spent[0] = TxOut(70_001, p2wpkh)
    assert not _kernel_verify(tx, spent, 0)


TAPROOT_TYPES = [0, 1, 2, 3, 0x81, 0x82, 0x83]


@pytest.mark.parametrize("hash_type", TAPROOT_TYPES)
@pytest.mark.parametrize("with_annex", [False, True])
def test_taproot_key_path_accepted_by_kernel(hash_type, with_annex):
    key, _ = taproot_output_key(XONLY, None)
    spk = S.p2tr_script(key)
    spent = [TxOut(100_000, spk), TxOut(110_000, S.p2wpkh_script(bytes(20)))]
    tx = _spending_tx(spent)
    annex = b"\x50annex data" if with_annex else None
    digest = taproot_sighash(tx, 0, spent, hash_type, annex=annex)
    sig = coincurve.PrivateKey(tweak_private_key(SECRET, None)).sign_schnorr(digest, bytes(32))
    tx.inputs[0].witness = [sig + (bytes((hash_type,)) if hash_type else b"")]
    if annex:
        tx.inputs[0].witness.append(annex)
    tx.invalidate()
    assert _kernel_verify(tx, spent, 0)
    # every spent scriptPubKey is committed (unless ANYONECANPAY)
    spent[1] = TxOut(110_000, S.p2wpkh_script(b"\x01" * 20))
    assert _kernel_verify(tx, spent, 0) == bool(hash_type & 0x80)


@pytest.mark.parametrize("hash_type", [0, 0x83])
def test_taproot_script_path_accepted_by_kernel(hash_type):
    leaf = TapLeaf(S.push_data(XONLY) + b"\xac")
    other = TapLeaf(b"\x51")
    root, paths = tree_hash_and_paths((leaf, other))
    key, parity = taproot_output_key(XONLY, root)
    spent = [TxOut(120_000, S.p2tr_script(key))]
    tx = _spending_tx(spent)
    digest = taproot_sighash(tx, 0, spent, hash_type, leaf_hash=leaf.hash)
    sig = PRIV.sign_schnorr(digest, bytes(32)) + (bytes((hash_type,)) if hash_type else b"")
    tx.inputs[0].witness = [sig, leaf.script, control_block(XONLY, parity, 0xC0, paths[0][1])]
    tx.invalidate()
    assert _kernel_verify(tx, spent, 0)
    # the key-path message (ext_flag 0) is not valid for a script-path signature
    keypath = taproot_sighash(tx, 0, spent, hash_type)
    tx.inputs[0].witness[0] = PRIV.sign_schnorr(keypath, bytes(32)) + sig[64:]
    tx.invalidate()
    assert not _kernel_verify(tx, spent, 0)


def test_sighash_errors():
    tx = _simple_tx(2, 1)
    spent = [TxOut(1, b"\x51"), TxOut(2, b"\x51")]
    with pytest.raises(SighashError, match="invalid taproot hash type"):
        taproot_sighash(tx, 0, spent, 0x04)
    with pytest.raises(SighashError, match="SIGHASH_SINGLE"):
        taproot_sighash(tx, 1, spent, SigHash.SINGLE)
    with pytest.raises(SighashError, match="spent outputs"):
        taproot_sighash(tx, 0, None)
    with pytest.raises(SighashError, match="spent outputs"):
        taproot_sighash(tx, 0, spent[:1])
    with pytest.raises(SighashError, match="annex"):
        taproot_sighash(tx, 0, spent, annex=b"\x51")
    with pytest.raises(SighashError, match="out of range"):
        segwit_v0_sighash(tx, 2, b"", 0, 1)

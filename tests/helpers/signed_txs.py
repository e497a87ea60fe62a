"""Deterministic signed transactions (P2PKH, P2WPKH, P2TR key path) for script benchmarks.

Keys come from a seeded RNG; prevouts are synthetic, so these are script jobs, not a chain.
"""

from __future__ import annotations

import random

import coincurve

from node.chain.scriptcheck import ScriptJob
from protocols.bitcoin.compact import compact_size
from protocols.bitcoin.hashes import hash160
from protocols.bitcoin.sighash import (
    PrecomputedTxData,
    SigHash,
    legacy_sighash,
    p2wpkh_script_code,
    segwit_v0_sighash,
    taproot_sighash,
)
from protocols.bitcoin.taproot import taproot_output_key, tweak_private_key
from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint

KINDS = ("p2pkh", "p2wpkh", "p2tr")


def _push(data: bytes) -> bytes:
    return compact_size(len(data)) + data  # data < 0x4c bytes here


def signed_jobs(n_txs: int, inputs_per_tx: int, seed: int = 1) -> list[ScriptJob]:
    """``n_txs`` transactions (tx_index 1..n) of ``inputs_per_tx`` inputs, kinds rotating."""
    rng = random.Random(seed)
    jobs = []
    for t in range(n_txs):
        keys, spent, inputs = [], [], []
        for i in range(inputs_per_tx):
            kind = KINDS[(t * inputs_per_tx + i) % len(KINDS)]
            secret = rng.randbytes(32)
            priv = coincurve.PrivateKey(secret)
            pub = priv.public_key.format(compressed=True)
            if kind == "p2pkh":
                spk = b"\x76\xa9\x14" + hash160(pub) + b"\x88\xac"
            elif kind == "p2wpkh":
                spk = b"\x00\x14" + hash160(pub)
            else:
                spk = b"\x51\x20" + taproot_output_key(pub[1:], None)[0]
            keys.append((kind, secret, priv, pub))
            spent.append(TxOut(rng.randrange(10_000, 10**9), spk))
            inputs.append(TxIn(outpoint(rng.randbytes(32), rng.randrange(4)), b"", 0xFFFFFFFD))
        total = sum(o.value for o in spent)
        tx = Tx(2, inputs, [TxOut(total - 1000, b"\x00\x14" + rng.randbytes(20))], 0)
        pre = PrecomputedTxData(tx, spent)
        for i, (kind, secret, priv, pub) in enumerate(keys):
            txin = tx.inputs[i]
            if kind == "p2pkh":
                digest = legacy_sighash(tx, i, spent[i].script_pubkey, SigHash.ALL)
                sig = priv.sign(digest, hasher=None) + b"\x01"
                txin.script_sig = _push(sig) + _push(pub)
            elif kind == "p2wpkh":
                code = p2wpkh_script_code(hash160(pub))
                digest = segwit_v0_sighash(tx, i, code, spent[i].value, SigHash.ALL, pre)
                txin.witness = [priv.sign(digest, hasher=None) + b"\x01", pub]
            else:
                digest = taproot_sighash(tx, i, spent, SigHash.DEFAULT, precomputed=pre)
                tweaked = coincurve.PrivateKey(tweak_private_key(secret, None))
                txin.witness = [tweaked.sign_schnorr(digest, rng.randbytes(32))]
        tx.invalidate()
        jobs.append(ScriptJob(t + 1, tx.serialize(), spent))
    return jobs

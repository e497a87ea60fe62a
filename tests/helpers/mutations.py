"""Mutations that turn a valid draft block into one that breaks a consensus rule.

Each mutation changes one thing, then re-commits what should stay consistent
(witness commitment, merkle root, proof of work) so that the intended rule is
the one that fails. The differential test offers the result to our node and to
Bitcoin Core's engine and requires the same verdict.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from node.mining.assembler import (
    coinbase_script_sig,
    solve,
    witness_commitment_script,
)
from node.mining.workload import Coin, RegtestWorkload
from protocols.bitcoin.block import Block
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.tx import Tx, TxIn, TxOut

Mutation = Callable[[RegtestWorkload, Block, random.Random], Block | bytes]


def recommit(block: Block, *, commitment: bool = True, pow_ok: bool = True) -> Block:
    """Recompute the coinbase commitment, the merkle root and a valid nonce."""
    coinbase = block.txs[0]
    if commitment:
        for i, out in enumerate(coinbase.outputs):
            if out.script_pubkey.startswith(b"\x6a\x24\xaa\x21\xa9\xed"):
                coinbase.outputs[i] = TxOut(0, witness_commitment_script(block.txs[1:]))
        coinbase.invalidate()
    block.header.merkle_root = merkle_root([tx.txid for tx in block.txs])[0]
    block._size = -1
    if pow_ok:
        solve(block.header)
    else:
        break_pow(block)
    return block


def break_pow(block: Block) -> None:
    target = bits_to_target(block.header.bits).target
    while int.from_bytes(block.header.hash, "little") <= target:
        block.header.nonce = (block.header.nonce + 1) & 0xFFFFFFFF


def _spend_tx(block: Block, rng: random.Random) -> int:
    return rng.randrange(1, len(block.txs))


def bad_merkle(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    recommit(b)
    b.header.merkle_root = rng.randbytes(32)
    solve(b.header)
    return b


def duplicate_tx(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    b.txs.append(b.txs[_spend_tx(b, rng)])
    return recommit(b)


def double_spend(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    """A second transaction spending the same coin, validly signed."""
    tx = b.txs[_spend_tx(b, rng)]
    coins = [w.draft.spent_by_prevout[i.prevout] for i in tx.inputs]
    twin = Tx(2, [TxIn(c.prevout, b"", 0xFFFFFFFD) for c in coins], list(tx.outputs), 0)
    twin.outputs[0] = TxOut(
        twin.outputs[0].value - rng.randrange(1, 1000), twin.outputs[0].script_pubkey
    )
    w.sign(twin, coins)
    b.txs.append(twin)
    return recommit(b)


def overspend(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    """Outputs worth more than the inputs, with valid signatures."""
    i = _spend_tx(b, rng)
    tx = b.txs[i]
    coins = [w.draft.spent_by_prevout[txin.prevout] for txin in tx.inputs]
    total = sum(c.output.value for c in coins)
    tx.outputs[0] = TxOut(total + rng.randrange(1, 10**6), tx.outputs[0].script_pubkey)
    for txin in tx.inputs:
        txin.witness = ()
    w.sign(tx, coins)
    return recommit(b)


def immature_spend(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    """Spend a coinbase fewer than 100 blocks deep."""
    coin: Coin = w.immature[-1 - rng.randrange(min(len(w.immature) - w.draft.matured, 50))]
    tx = Tx(
        2,
        [TxIn(coin.prevout, b"", 0xFFFFFFFE)],
        [TxOut(coin.output.value - 1000, coin.output.script_pubkey)],
        0,
    )
    w.sign(tx, [coin])
    b.txs.append(tx)
    return recommit(b)


def bad_witness_commitment(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    coinbase = b.txs[0]
    for i, out in enumerate(coinbase.outputs):
        if out.script_pubkey.startswith(b"\x6a\x24\xaa\x21\xa9\xed"):
            script = bytearray(out.script_pubkey)
            script[6 + rng.randrange(32)] ^= 1 << rng.randrange(8)
            coinbase.outputs[i] = TxOut(0, bytes(script))
    coinbase.invalidate()
    return recommit(b, commitment=False)


def bad_signature(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    tx = b.txs[_spend_tx(b, rng)]
    txin = tx.inputs[rng.randrange(len(tx.inputs))]
    sig = bytearray(txin.witness[0])
    sig[rng.randrange(4, len(sig) - 1)] ^= 1 << rng.randrange(8)
    txin.witness = [bytes(sig), *txin.witness[1:]]
    tx.invalidate()
    return recommit(b)


def wrong_bip34_height(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    coinbase = b.txs[0]
    wrong = w.height + 1 + rng.choice([-1, 1, 2, 1000])
    coinbase.inputs[0].script_sig = coinbase_script_sig(max(wrong, 0), b"\x00")
    coinbase.invalidate()
    return recommit(b)


def oversized(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    """A coinbase output large enough to push the block past 4M weight."""
    coinbase = b.txs[0]
    coinbase.outputs.insert(1, TxOut(0, b"\x6a" + b"\x00" * (1_000_001 + rng.randrange(1000))))
    coinbase.invalidate()
    return recommit(b)


def bad_pow(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    return recommit(b, pow_ok=False)


def time_too_old(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    """A timestamp at or below the median of the last 11 blocks."""
    b.header.time = w.time - 5 - rng.randrange(0, 5)
    return recommit(b)


def coinbase_overpay(w: RegtestWorkload, b: Block, rng: random.Random) -> Block:
    coinbase = b.txs[0]
    out = coinbase.outputs[0]
    coinbase.outputs[0] = TxOut(out.value + rng.randrange(1, 10**8), out.script_pubkey)
    coinbase.invalidate()
    return recommit(b)


def byte_flip(w: RegtestWorkload, b: Block, rng: random.Random) -> bytes:
    """Random damage to the transaction bytes (the header is left intact)."""
    raw = bytearray(b.serialize())
    for _ in range(rng.randrange(1, 4)):
        pos = rng.randrange(81, len(raw))
        raw[pos] ^= 1 << rng.randrange(8)
    return bytes(raw)


def truncate(w: RegtestWorkload, b: Block, rng: random.Random) -> bytes:
    raw = b.serialize()
    return raw[: rng.randrange(0, len(raw))]


MUTATIONS: dict[str, Mutation] = {
    "bad_merkle": bad_merkle,
    "duplicate_tx": duplicate_tx,
    "double_spend": double_spend,
    "overspend": overspend,
    "immature_spend": immature_spend,
    "bad_witness_commitment": bad_witness_commitment,
    "bad_signature": bad_signature,
    "wrong_bip34_height": wrong_bip34_height,
    "oversized": oversized,
    "bad_pow": bad_pow,
    "time_too_old": time_too_old,
    "coinbase_overpay": coinbase_overpay,
    "byte_flip": byte_flip,
    "truncate": truncate,
}

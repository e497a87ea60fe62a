"""Regtest block building for chainstate tests: extend or mutate the fixture chain.

Coinbases pay to ``OP_TRUE`` (``51``), so tests can spend them with an empty scriptSig
and no keys; regtest proof of work (``0x207fffff``) is re-solved in a few tries.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from node.chain.params import REGTEST, block_subsidy
from node.chain.validation import bip34_height_push, witness_merkle_root
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut, outpoint

FIXTURE = "regtest_blocks_1_206.txt"
OP_TRUE = b"\x51"
REGTEST_BITS = 0x207FFFFF


def fixture_hex(core_vectors: Path) -> list[str]:
    return (core_vectors / FIXTURE).read_text().split()


def fixture_blocks(core_vectors: Path) -> list[Block]:
    return [Block.from_hex(h) for h in fixture_hex(core_vectors)]


def solve(block: Block, fix_merkle: bool = True) -> Block:
    """Recompute the merkle root (unless told not to) and grind the nonce to meet nBits."""
    for tx in block.txs:
        tx.invalidate()
    block._size = -1
    if fix_merkle:
        block.header.merkle_root = merkle_root([tx.txid for tx in block.txs])[0]
    target = bits_to_target(block.header.bits).target
    header = block.header
    prefix = header.serialize()[:76]
    nonce = 0
    while True:
        h = sha256d(prefix + struct.pack("<I", nonce))
        if int.from_bytes(h, "little") <= target:
            header.nonce = nonce
            return block
        nonce += 1


def unsolve(block: Block) -> Block:
    """Make the header miss its target (for high-hash tests)."""
    target = bits_to_target(block.header.bits).target
    prefix = block.header.serialize()[:76]
    nonce = 0
    while int.from_bytes(sha256d(prefix + struct.pack("<I", nonce)), "little") <= target:
        nonce += 1
    block.header.nonce = nonce
    return block


def copy_block(block: Block) -> Block:
    return Block.from_bytes(block.serialize())


def coinbase_tx(
    height: int,
    value: int,
    script: bytes = OP_TRUE,
    extra: bytes = b"",
    witness_nonce: bytes | None = None,
    pad: int = 0,
) -> Tx:
    sig = bip34_height_push(height) + extra
    if len(sig) < 2:
        sig += b"\x00"
    outputs = [TxOut(value, script)]
    if pad:
        outputs.append(TxOut(0, b"\x6a" + b"\x00" * pad))  # unspendable filler
    txin = TxIn(NULL_OUTPOINT, sig, 0xFFFFFFFF)
    if witness_nonce is not None:
        txin.witness = [witness_nonce]
    return Tx(2, [txin], outputs, 0)


def add_witness_commitment(block: Block) -> None:
    """Give the coinbase a witness nonce and a BIP141 commitment output (last)."""
    cb = block.txs[0]
    cb.inputs[0].witness = [b"\x00" * 32]
    cb.invalidate()
    for tx in block.txs:
        tx.invalidate()
    root = witness_merkle_root(block)
    commitment = sha256d(root + b"\x00" * 32)
    cb.outputs.append(TxOut(0, b"\x6a\x24\xaa\x21\xa9\xed" + commitment))
    cb.invalidate()


def spend_tx(
    prevouts: list[bytes],
    values: list[int],
    script: bytes = OP_TRUE,
    *,
    sequence: int = 0xFFFFFFFF,
    version: int = 2,
    locktime: int = 0,
) -> Tx:
    """Spend OP_TRUE outputs (empty scriptSig) into outputs of ``values``."""
    inputs = [TxIn(op, b"", sequence) for op in prevouts]
    return Tx(version, inputs, [TxOut(v, script) for v in values], locktime)


@dataclass
class Tip:
    hash: bytes
    height: int
    time: int


def tip_of(block: Block, height: int) -> Tip:
    return Tip(block.hash, height, block.header.time)


def make_block(
    parent: Tip,
    txs: list[Tx] | None = None,
    *,
    fees: int = 0,
    time_delta: int = 1,
    coinbase_script: bytes = OP_TRUE,
    extra: bytes = b"",
    pad: int = 0,
    witness: bool | None = None,
) -> Block:
    """A solved regtest block on ``parent`` paying subsidy + ``fees`` to ``coinbase_script``."""
    height = parent.height + 1
    txs = list(txs or [])
    cb = coinbase_tx(height, block_subsidy(height, REGTEST) + fees, coinbase_script, extra, pad=pad)
    header = BlockHeader(
        0x20000000, parent.hash, b"\x00" * 32, parent.time + time_delta, REGTEST_BITS, 0
    )
    block = Block(header, [cb, *txs])
    if witness or (witness is None and any(tx.has_witness() for tx in txs)):
        add_witness_commitment(block)
    return solve(block)


def build_chain(parent: Tip, count: int, **kwargs) -> list[Block]:
    blocks = []
    for _ in range(count):
        b = make_block(parent, **kwargs)
        blocks.append(b)
        parent = Tip(b.hash, parent.height + 1, b.header.time)
    return blocks


def coinbase_outpoint(block: Block, index: int = 0) -> bytes:
    return outpoint(block.txs[0].txid, index)


def churn_chain(base_raw: list[bytes], count: int, fanout: int = 20) -> list[Block]:
    """``count`` blocks on top of ``base_raw`` (which must end with >= 100 + count OP_TRUE
    coinbase blocks ... or at least mature ones at the start): each block splits the coinbase
    of the block 100 below into ``fanout`` outputs and merges half of the previous split."""
    parsed = [Block.from_bytes(r) for r in base_raw]
    tip = tip_of(parsed[-1], len(parsed))
    blocks: list[Block] = []
    prev_split: Tx | None = None
    for _ in range(count):
        height = tip.height + 1
        src = (parsed + blocks)[height - 100 - 1]
        cb = src.txs[0]
        if cb.outputs[0].script_pubkey != OP_TRUE:
            raise ValueError(f"coinbase at height {height - 100} is not OP_TRUE")
        value = cb.outputs[0].value
        share = value // fanout
        split = spend_tx([outpoint(cb.txid, 0)], [share] * fanout)
        txs = [split]
        fees = value - share * fanout
        if prev_split is not None:
            half = fanout // 2
            merged_value = sum(o.value for o in prev_split.outputs[:half])
            txs.append(
                spend_tx([outpoint(prev_split.txid, i) for i in range(half)], [merged_value - 100])
            )
            fees += 100
        block = make_block(tip, txs, fees=fees)
        blocks.append(block)
        prev_split = split
        tip = Tip(block.hash, height, block.header.time)
    return blocks

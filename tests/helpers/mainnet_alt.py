"""Rebuild the 2016-block alternative mainnet chain of Bitcoin Core's ``mining_mainnet`` test.

The vector (``mainnet_alt.json``) stores only timestamps and nonces; everything else in each
block is deterministic: version 0x20000000, one coinbase paying 50 BTC to
``COINBASE_SCRIPT_PUBKEY`` with a BIP34 height push as scriptSig (heights <= 16 as OP_n plus
an OP_0 so the scriptSig is 2 bytes long), sequence final, nLockTime 0, transaction version 2. Blocks 1..2015 carry
difficulty-1 bits; block 2016 carries the retargeted bits (difficulty 4).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from node.mining.assembler import coinbase_script_sig
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.tx import NULL_OUTPOINT, SEQUENCE_FINAL, Tx, TxIn, TxOut

COINBASE_SCRIPT_PUBKEY = bytes.fromhex("76a914eadbac7f36c37e39361168b7aaee3cb24a25312d88ac")
VERSION = 0x20000000
DIFF_1_BITS = 0x1D00FFFF
DIFF_4_BITS = 0x1C3FFFC0
COINBASE_TX_VERSION = 2  # the test framework's CTransaction default


def coinbase(height: int, value: int = 50 * 100_000_000) -> Tx:
    txin = TxIn(NULL_OUTPOINT, coinbase_script_sig(height), SEQUENCE_FINAL)
    return Tx(COINBASE_TX_VERSION, [txin], [TxOut(value, COINBASE_SCRIPT_PUBKEY)], 0)


def load(vectors: Path) -> dict[str, list[int]]:
    with open(vectors / "mainnet_alt.json", encoding="utf-8") as f:
        return json.load(f)


def blocks(vectors: Path, genesis_hash: bytes, count: int = 2016) -> Iterator[Block]:
    """Yield blocks 1..count, each linked to the previous one's hash."""
    data = load(vectors)
    prev = genesis_hash
    for height in range(1, count + 1):
        cb = coinbase(height)
        root, _ = merkle_root([cb.txid])
        bits = DIFF_1_BITS if height < 2016 else DIFF_4_BITS
        header = BlockHeader(
            VERSION, prev, root, data["timestamps"][height - 1], bits, data["nonces"][height - 1]
        )
        block = Block(header, [cb])
        yield block
        prev = header.hash


def headers(vectors: Path, genesis_hash: bytes, count: int = 2016) -> list[bytes]:
    """The raw 80-byte headers of blocks 1..count."""
    return [b.header.serialize() for b in blocks(vectors, genesis_hash, count)]

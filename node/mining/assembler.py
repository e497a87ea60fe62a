"""Assemble blocks: BIP34 coinbase, BIP141 witness commitment, merkle root, and
a CPU nonce search for regtest-difficulty work.

Templates (getblocktemplate, Stratum V2 template distribution) and regtest
block generation all end here, so the coinbase and commitment rules live once.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.script import push_int
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut

WITNESS_COMMITMENT_HEADER = bytes.fromhex("aa21a9ed")
WITNESS_RESERVED_VALUE = b"\x00" * 32


def coinbase_script_sig(height: int, extra: bytes = b"") -> bytes:
    """BIP34 height push, then ``extra``; padded to the 2-byte consensus minimum."""
    script = push_int(height) + extra
    if len(script) < 2:
        script += b"\x00"
    return script


def witness_commitment_script(txs: Sequence[Tx]) -> bytes:
    """The BIP141 commitment output script for a block of ``txs`` (the coinbase excluded:
    its wtxid counts as zero) with the all-zero witness reserved value."""
    wtxids = [b"\x00" * 32] + [tx.wtxid for tx in txs]
    root, _ = merkle_root(wtxids)
    return b"\x6a\x24" + WITNESS_COMMITMENT_HEADER + sha256d(root + WITNESS_RESERVED_VALUE)


def create_coinbase(
    height: int,
    value: int,
    script_pubkey: bytes,
    *,
    extra: bytes = b"",
    txs: Sequence[Tx] = (),
    with_commitment: bool = True,
) -> Tx:
    """A coinbase paying ``value`` to ``script_pubkey``.

    With ``with_commitment`` the coinbase carries the witness reserved value and a
    commitment to the wtxids of ``txs`` (the block's other transactions), as
    every post-segwit template does.
    """
    txin = TxIn(NULL_OUTPOINT, coinbase_script_sig(height, extra), 0xFFFFFFFF)
    outputs = [TxOut(value, script_pubkey)]
    coinbase = Tx(2, [txin], outputs, 0)
    if with_commitment:
        txin.witness = [WITNESS_RESERVED_VALUE]
        outputs.append(TxOut(0, witness_commitment_script(txs)))
    return coinbase


def assemble_block(
    prev_hash: bytes, time: int, bits: int, txs: list[Tx], version: int = 0x20000000
) -> Block:
    """A block over ``txs`` (coinbase first) with its merkle root; nonce 0, unsolved."""
    root, _ = merkle_root([tx.txid for tx in txs])
    return Block(BlockHeader(version, prev_hash, root, time, bits, 0), txs)


def solve(header: BlockHeader, max_tries: int = 1 << 32) -> bool:
    """Search nonces from ``header.nonce`` until the hash meets the target.

    Reuses the SHA-256 state of the first 64 header bytes, so each try hashes
    only the last 16 bytes plus the second round. Returns False when
    ``max_tries`` ran out (the caller then changes time or extranonce).
    """
    target = bits_to_target(header.bits).target
    raw = bytearray(header.serialize())
    midstate = hashlib.sha256(raw[:64])
    tail = bytes(raw[64:76])
    sha = hashlib.sha256
    pack = struct.Struct("<I").pack
    nonce = header.nonce
    for _ in range(max_tries):
        first = midstate.copy()
        first.update(tail + pack(nonce))
        if int.from_bytes(sha(first.digest()).digest(), "little") <= target:
            header.nonce = nonce
            return True
        nonce = (nonce + 1) & 0xFFFFFFFF
    header.nonce = nonce
    return False

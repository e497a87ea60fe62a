"""Undo data: the coins a block spent, so it can be disconnected in a reorg.

One entry per non-coinbase transaction, in block order; each entry lists the spent
coins in input order (Core's CBlockUndo/CTxUndo shape). The record ends with a
SHA-256 over the block hash and the body, so a torn or foreign record in a rev file
is detected instead of silently restoring wrong coins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from node.chain.coins import (
    Coin,
    CoinDecodeError,
    decode_coin_with_length,
    encode_coin_with_length,
    read_varint,
    write_varint,
)


@dataclass(slots=True)
class BlockUndo:
    txs: list[list[Coin]] = field(default_factory=list)

    def serialize(self, block_hash: bytes) -> bytes:
        out = bytearray()
        write_varint(len(self.txs), out)
        for spent in self.txs:
            write_varint(len(spent), out)
            for coin in spent:
                encode_coin_with_length(coin, out)
        out += hashlib.sha256(block_hash + out).digest()
        return bytes(out)

    @classmethod
    def parse(cls, data: bytes, block_hash: bytes) -> BlockUndo:
        if len(data) < 33:
            raise CoinDecodeError("undo record too short")
        body, check = data[:-32], data[-32:]
        if hashlib.sha256(block_hash + body).digest() != check:
            raise CoinDecodeError("undo record checksum mismatch")
        ntx, pos = read_varint(body, 0)
        txs: list[list[Coin]] = []
        for _ in range(ntx):
            nin, pos = read_varint(body, pos)
            spent = []
            for _ in range(nin):
                coin, pos = decode_coin_with_length(body, pos)
                spent.append(coin)
            txs.append(spent)
        if pos != len(body):
            raise CoinDecodeError("trailing bytes in undo record")
        return cls(txs)

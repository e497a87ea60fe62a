"""Undo data: the coins a block spent, so it can be disconnected in a reorg.

One entry per non-coinbase transaction, in block order; each entry lists the spent
coins in input order (Core's CBlockUndo/CTxUndo shape). The record ends with a
SHA-256 over the block hash and the body, so a torn or foreign record in a rev file
is detected instead of silently restoring wrong coins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from node.chain.coins import Coin, CoinDecodeError, decode_coin, encode_coin
from protocols.bitcoin.compact import compact_size, read_compact_size
from protocols.bitcoin.errors import DecodeError


@dataclass(slots=True)
class BlockUndo:
    txs: list[list[Coin]] = field(default_factory=list)

    def serialize(self, block_hash: bytes) -> bytes:
        parts = [compact_size(len(self.txs))]
        append = parts.append
        for spent in self.txs:
            append(compact_size(len(spent)))
            for coin in spent:
                body = encode_coin(coin)
                n = len(body)
                append(bytes((n,)) if n < 0xFD else compact_size(n))
                append(body)
        out = b"".join(parts)
        return out + hashlib.sha256(block_hash + out).digest()

    @classmethod
    def parse(cls, data: bytes, block_hash: bytes) -> BlockUndo:
        if len(data) < 33:
            raise CoinDecodeError("undo record too short")
        body, check = data[:-32], data[-32:]
        if hashlib.sha256(block_hash + body).digest() != check:
            raise CoinDecodeError("undo record checksum mismatch")
        try:
            ntx, pos = read_compact_size(body, 0)
            txs: list[list[Coin]] = []
            for _ in range(ntx):
                nin, pos = read_compact_size(body, pos)
                spent = []
                for _ in range(nin):
                    n, pos = read_compact_size(body, pos)
                    end = pos + n
                    if end > len(body):
                        raise CoinDecodeError("truncated coin in undo record")
                    spent.append(decode_coin(body[pos:end]))
                    pos = end
                txs.append(spent)
        except DecodeError as exc:
            raise CoinDecodeError(f"malformed undo record: {exc}") from None
        if pos != len(body):
            raise CoinDecodeError("trailing bytes in undo record")
        return cls(txs)

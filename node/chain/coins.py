"""Unspent outputs ("coins") and their compact on-disk encoding.

A coin is keyed by its 36-byte outpoint (txid || index LE, exactly as it appears in
a transaction input), so an input's ``prevout`` is the database key with no
re-encoding. The value is ``lengths || code || amount || script`` where ``code`` is
``height * 2 + coinbase`` and both integers are minimal little-endian byte strings
whose lengths share the first byte (high / low nibble): about 9 bytes plus the
script for a typical coin, and encoded with two ``int.to_bytes`` calls instead of a
per-byte loop (this runs for every created and spent coin). The same encoding is
used in undo data, so a disconnected block restores byte-identical entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.chain.errors import ChainError


class CoinDecodeError(ChainError):
    """Stored coin bytes do not decode (database or undo file corruption)."""


@dataclass(frozen=True, slots=True)
class Coin:
    height: int
    coinbase: bool
    amount: int
    script: bytes


def write_varint(n: int, out: bytearray) -> None:
    """Append ``n`` (unsigned) as base-128 little-endian groups (LEB128)."""
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read a LEB128 integer at ``pos``; returns (value, new position)."""
    result = 0
    shift = 0
    try:
        while True:
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, pos
            shift += 7
            if shift > 70:
                raise CoinDecodeError("varint too long")
    except IndexError:
        raise CoinDecodeError("truncated varint") from None


def encode_parts(height: int, coinbase: bool, amount: int, script: bytes) -> bytes:
    """``encode_coin`` without building a Coin first."""
    code = height * 2 + coinbase
    nc = (code.bit_length() + 7) >> 3
    na = (amount.bit_length() + 7) >> 3
    return (
        bytes(((nc << 4) | na,))
        + code.to_bytes(nc, "little")
        + amount.to_bytes(na, "little")
        + script
    )


def encode_coin(coin: Coin) -> bytes:
    code = coin.height * 2 + coin.coinbase
    amount = coin.amount
    nc = (code.bit_length() + 7) >> 3
    na = (amount.bit_length() + 7) >> 3
    return (
        bytes(((nc << 4) | na,))
        + code.to_bytes(nc, "little")
        + amount.to_bytes(na, "little")
        + coin.script
    )


def decode_coin(data: bytes | memoryview) -> Coin:
    try:
        lengths = data[0]
    except IndexError:
        raise CoinDecodeError("empty coin record") from None
    nc = lengths >> 4
    na = lengths & 0x0F
    end = 1 + nc + na
    if nc > 8 or na > 8 or end > len(data):
        raise CoinDecodeError("malformed coin record")
    code = int.from_bytes(data[1 : 1 + nc], "little")
    amount = int.from_bytes(data[1 + nc : end], "little")
    return Coin(code >> 1, bool(code & 1), amount, bytes(data[end:]))


def decode_amount(data: bytes | memoryview) -> int:
    """Just the amount of an encoded coin (for UTXO-set statistics)."""
    nc = data[0] >> 4
    return int.from_bytes(data[1 + nc : 1 + nc + (data[0] & 0x0F)], "little")

"""Unspent outputs ("coins") and their compact on-disk encoding.

A coin is keyed by its 36-byte outpoint (txid || index LE, exactly as it appears in
a transaction input), so an input's ``prevout`` is the database key with no
re-encoding. The value is ``varint(height * 2 + coinbase) || varint(amount) ||
script``: heights and amounts are small in practice, so most coins need 1–4 bytes
plus the script. The same encoding is used in undo data so a disconnected block
restores byte-identical entries.
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


def encode_coin(coin: Coin) -> bytes:
    out = bytearray()
    write_varint(coin.height * 2 + coin.coinbase, out)
    write_varint(coin.amount, out)
    out += coin.script
    return bytes(out)


def encode_parts(height: int, coinbase: bool, amount: int, script: bytes) -> bytes:
    """``encode_coin`` without building a Coin first (the connect hot path)."""
    code = height * 2 + coinbase
    if code < 0x80 and amount < 0x80:
        return bytes((code, amount)) + script
    out = bytearray()
    write_varint(code, out)
    write_varint(amount, out)
    out += script
    return bytes(out)


def decode_coin(data: bytes | memoryview) -> Coin:
    code, pos = read_varint(data, 0)
    amount, pos = read_varint(data, pos)
    return Coin(code >> 1, bool(code & 1), amount, bytes(data[pos:]))


def encode_coin_with_length(coin: Coin, out: bytearray) -> None:
    """Length-prefixed encoding, for lists of coins (undo records)."""
    body = encode_coin(coin)
    write_varint(len(body), out)
    out += body


def decode_coin_with_length(buf: bytes | memoryview, pos: int) -> tuple[Coin, int]:
    n, pos = read_varint(buf, pos)
    end = pos + n
    if end > len(buf):
        raise CoinDecodeError("truncated coin")
    return decode_coin(buf[pos:end]), end

"""Text forms of SV2 keys (base58check), as SRI configs and pool websites publish them.

Authority public key: base58check(`01 00` || x-only key) — the two bytes are a U16 LE version
(1). Secret keys are base58check of the raw 32 bytes.
"""

from __future__ import annotations

import hashlib

from protocols.sv2 import secp
from protocols.sv2.errors import KeyFormatError

__all__ = [
    "KeyFormatError",
    "b58check_decode",
    "b58check_encode",
    "decode_authority_public_key",
    "decode_secret_key",
    "encode_authority_public_key",
    "encode_secret_key",
]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
AUTHORITY_KEY_VERSION = b"\x01\x00"


def _checksum(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()[:4]


def b58check_encode(payload: bytes) -> str:
    data = payload + _checksum(payload)
    n = int.from_bytes(data, "big")
    chars = []
    while n:
        n, rem = divmod(n, 58)
        chars.append(_ALPHABET[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(chars))


def b58check_decode(text: str) -> bytes:
    text = text.strip()
    if not text or len(text) > 200:
        raise KeyFormatError("empty or overlong base58 string")
    n = 0
    for c in text:
        if c not in _INDEX:
            raise KeyFormatError(f"invalid base58 character {c!r}")
        n = n * 58 + _INDEX[c]
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    data = b"\0" * pad + body
    if len(data) < 4 or _checksum(data[:-4]) != data[-4:]:
        raise KeyFormatError("base58check checksum mismatch")
    return data[:-4]


def encode_authority_public_key(xonly: bytes) -> str:
    if len(xonly) != 32:
        raise KeyFormatError("x-only public key is 32 bytes")
    return b58check_encode(AUTHORITY_KEY_VERSION + xonly)


def decode_authority_public_key(text: str) -> bytes:
    """x-only authority key from its base58check text form; checks it is on the curve."""
    raw = b58check_decode(text)
    if len(raw) != 34 or raw[:2] != AUTHORITY_KEY_VERSION:
        raise KeyFormatError("authority public key must be version 1 and 32 bytes")
    xonly = raw[2:]
    if not secp.schnorr_point_is_valid(xonly):
        raise KeyFormatError("authority public key is not a valid x-only point")
    return xonly


def encode_secret_key(secret: bytes) -> str:
    if not secp.is_valid_secret(secret):
        raise KeyFormatError("secret key must be 32 bytes in 1..n-1")
    return b58check_encode(secret)


def decode_secret_key(text: str) -> bytes:
    raw = b58check_decode(text)
    if not secp.is_valid_secret(raw):
        raise KeyFormatError("secret key must be 32 bytes in 1..n-1")
    return raw

"""Hash functions Bitcoin uses, thin wrappers over hashlib."""

from __future__ import annotations

import hashlib

_sha256 = hashlib.sha256


def sha256(data: bytes | bytearray | memoryview) -> bytes:
    return _sha256(data).digest()


def sha256d(data: bytes | bytearray | memoryview) -> bytes:
    """Double SHA-256: txids, block hashes, merkle nodes, checksums."""
    return _sha256(_sha256(data).digest()).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)); falls back to a pure-Python RIPEMD160 where OpenSSL lacks it."""
    inner = _sha256(data).digest()
    try:
        return hashlib.new("ripemd160", inner).digest()
    except ValueError:
        from protocols.bitcoin._ripemd160 import ripemd160

        return ripemd160(inner)


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP340 tagged hash: SHA256(SHA256(tag) || SHA256(tag) || data)."""
    tag_hash = _sha256(tag.encode()).digest()
    return _sha256(tag_hash + tag_hash + data).digest()


def hash_to_hex(h: bytes) -> str:
    """Display form of a txid/block hash: byte-reversed hex."""
    return h[::-1].hex()


def hex_to_hash(s: str) -> bytes:
    """Inverse of :func:`hash_to_hex`."""
    b = bytes.fromhex(s)
    if len(b) != 32:
        raise ValueError(f"expected 32-byte hash, got {len(b)} bytes")
    return b[::-1]

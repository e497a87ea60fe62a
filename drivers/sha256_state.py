"""SHA-256 state work that hashlib cannot do: read a midstate out, or start from one.

hashlib hides the compression state, yet the BM13xx family deals in exactly that: the host
sends BM1397 chips the eight state words after a header's first 64 bytes (a midstate),
and a simulated BM1397 finishes headers from those words. This module owns both
directions for the driver and the sim:

- :func:`midstate_words` compresses one block from the standard IV (new-tip latency path:
  a clean BM1397 job needs four midstates);
- :func:`block_hasher` compresses blocks from a given state (the sim's nonce scan).

Both use OpenSSL's ``SHA256_Transform`` through ctypes when libcrypto exports it and it
agrees with the plain-Python :func:`compress` at import (~5 us per block instead of
~150 us); otherwise they fall back to :func:`compress`, with a warning when libcrypto was
found but disagreed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import struct
from collections.abc import Callable

log = logging.getLogger(__name__)

_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)  # fmt: skip

SHA256_IV = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)  # fmt: skip

_M = 0xFFFFFFFF
_BLOCK = struct.Struct(">16I")
_STATE_BE = struct.Struct(">8I")
_STATE_NATIVE = struct.Struct("=8I")


def compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    """One SHA-256 compression (FIPS 180-4) of a 64-byte ``block`` into ``state`` (8 words).

    Rotations are inlined and masked only where a sum needs it: measurably faster in
    CPython than a helper per rotation (the sim's fallback scan runs this per nonce).
    """
    if len(block) != 64:
        raise ValueError("SHA-256 block must be 64 bytes")
    w = list(_BLOCK.unpack(block))
    for i in range(16, 64):
        x, y = w[i - 15], w[i - 2]
        s0 = ((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)
        s1 = ((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & _M)
    a, b, c, d, e, f, g, h = state
    for k, wi in zip(_K, w, strict=True):
        s1 = ((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))
        t1 = (h + (s1 & _M) + ((e & f) ^ (~e & g)) + k + wi) & _M
        s0 = ((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))
        t2 = ((s0 & _M) + ((a & b) ^ (a & c) ^ (b & c))) & _M
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M, c, b, a, (t1 + t2) & _M
    return tuple((x + v) & _M for x, v in zip(state, (a, b, c, d, e, f, g, h), strict=True))


class _Sha256Ctx(ctypes.Structure):
    # OpenSSL's SHA256_CTX: state words h[8] first, then bit counts, buffer, num, md_len.
    _fields_ = (
        ("h", ctypes.c_uint32 * 8),
        ("nl", ctypes.c_uint32),
        ("nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    )


def _openssl_compress(
    transform: Callable[..., None], state: tuple[int, ...], block: bytes
) -> tuple[int, ...]:
    ctx = _Sha256Ctx()
    ctx.h[:] = state
    transform(ctypes.byref(ctx), block)
    return tuple(ctx.h)


def _load_openssl_transform() -> Callable[[ctypes.c_void_p, bytes], None] | None:
    """libcrypto's ``SHA256_Transform`` if present and in agreement with :func:`compress`."""
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).SHA256_Transform
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
    fn.restype = None
    probe = bytes(range(64))
    other_state = compress(SHA256_IV, probe[::-1])
    for state in (SHA256_IV, other_state):
        if _openssl_compress(fn, state, probe) != compress(state, probe):
            log.warning("libcrypto SHA256_Transform disagrees with SHA-256; using plain Python")
            return None
    return fn


_OPENSSL_TRANSFORM = _load_openssl_transform()


def openssl_available() -> bool:
    """Whether midstates and block hashing use libcrypto (fast) rather than plain Python."""
    return _OPENSSL_TRANSFORM is not None


def midstate_words_py(first64: bytes) -> tuple[int, ...]:
    """SHA-256 state after a message's first 64 bytes (plain Python)."""
    return compress(SHA256_IV, first64)


def midstate_words(first64: bytes) -> tuple[int, ...]:
    """SHA-256 state after a message's first 64 bytes."""
    if len(first64) != 64:
        raise ValueError("midstate needs exactly 64 bytes")
    transform = _OPENSSL_TRANSFORM
    if transform is not None:
        return _openssl_compress(transform, SHA256_IV, first64)
    return midstate_words_py(first64)


def block_hasher(state: tuple[int, ...]) -> Callable[[bytes], bytes]:
    """A function compressing one 64-byte block from ``state``; returns the big-endian words.

    For an already padded final block the result is the SHA-256 digest. The fast path keeps
    one OpenSSL context per hasher, so one hasher must not be shared between threads.
    """
    if len(state) != 8:
        raise ValueError("SHA-256 state needs 8 words")
    state = tuple(state)
    pack = _STATE_BE.pack
    transform = _OPENSSL_TRANSFORM
    if transform is None:

        def hash_block_py(block: bytes) -> bytes:
            return pack(*compress(state, block))

        return hash_block_py

    ctx = _Sha256Ctx()
    addr, ref, words = ctypes.addressof(ctx), ctypes.byref(ctx), ctx.h
    raw = _STATE_NATIVE.pack(*state)
    memmove = ctypes.memmove

    def hash_block(block: bytes) -> bytes:
        if len(block) != 64:  # OpenSSL reads 64 bytes whatever it is given
            raise ValueError("SHA-256 block must be 64 bytes")
        memmove(addr, raw, 32)
        transform(ref, block)
        return pack(*words)

    return hash_block


def sha256_from_midstate(state: tuple[int, ...], tail: bytes, total_len: int = 80) -> bytes:
    """Finish a SHA-256 whose first 64 bytes gave ``state``; ``tail`` is the rest (< 56 B)."""
    pad = tail + b"\x80" + b"\x00" * ((55 - len(tail)) % 64) + struct.pack(">Q", total_len * 8)
    for off in range(0, len(pad), 64):
        state = compress(state, pad[off : off + 64])
    return _STATE_BE.pack(*state)

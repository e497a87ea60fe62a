"""SHA-256 midstates for BM1397 jobs, and BIP320 version stepping.

hashlib does not expose its internal state, and the BM1397 wants exactly that: the eight
state words after compressing the header's first 64 bytes. A new block's clean job needs
four of them, so they sit on the new-tip latency path: when libcrypto is loadable we let
OpenSSL's SHA256_Init/Update compress the block and read the state from its context
(checked against the plain-Python compression below at import); otherwise the plain
compression does it (~1 ms per midstate instead of ~5 us).
:func:`sha256_from_midstate` lets a simulated chip finish a header from a midstate.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import struct

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

_M32 = 0xFFFFFFFF


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M32


def compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    """One SHA-256 compression of a 64-byte ``block`` into ``state`` (8 words)."""
    if len(block) != 64:
        raise ValueError("SHA-256 block must be 64 bytes")
    w = list(struct.unpack(">16I", block))
    for i in range(16, 64):
        s0 = _rotr(w[i - 15], 7) ^ _rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
        s1 = _rotr(w[i - 2], 17) ^ _rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & _M32)
    a, b, c, d, e, f, g, h = state
    for i in range(64):
        t1 = (
            h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _K[i] + w[i]
        ) & _M32
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & _M32
        a, b, c, d, e, f, g, h = (t1 + t2) & _M32, a, b, c, (d + t1) & _M32, e, f, g
    return tuple((x + y) & _M32 for x, y in zip(state, (a, b, c, d, e, f, g, h), strict=True))


def midstate_words_py(first64: bytes) -> tuple[int, ...]:
    """SHA-256 state after the header's first 64 bytes (plain Python)."""
    return compress(SHA256_IV, first64)


class _Sha256Ctx(ctypes.Structure):
    # OpenSSL's SHA256_CTX: state words h[8], then bit counts, buffer, num, md_len.
    _fields_ = (
        ("h", ctypes.c_uint32 * 8),
        ("nl", ctypes.c_uint32),
        ("nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    )


def _load_openssl():
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        init, update = lib.SHA256_Init, lib.SHA256_Update
    except (OSError, AttributeError):
        return None
    init.argtypes = (ctypes.c_void_p,)
    update.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)

    def words(first64: bytes) -> tuple[int, ...]:
        ctx = _Sha256Ctx()
        init(ctypes.byref(ctx))
        update(ctypes.byref(ctx), first64, 64)
        return tuple(ctx.h)

    probe = bytes(range(64))
    if words(probe) != midstate_words_py(probe):
        log.warning("libcrypto SHA256 context layout unexpected; using plain-Python midstates")
        return None
    return words


_openssl_words = _load_openssl()


def midstate_words(first64: bytes) -> tuple[int, ...]:
    """SHA-256 state after the header's first 64 bytes."""
    if len(first64) != 64:
        raise ValueError("midstate needs exactly 64 bytes")
    if _openssl_words is not None:
        return _openssl_words(first64)
    return midstate_words_py(first64)


def midstate_wire(first64: bytes) -> bytes:
    """Midstate as a BM1397 job frame carries it: words h7..h0, each big-endian."""
    return struct.pack(">8I", *reversed(midstate_words(first64)))


def words_from_wire(wire: bytes) -> tuple[int, ...]:
    """Inverse of :func:`midstate_wire`."""
    return tuple(reversed(struct.unpack(">8I", wire)))


def sha256_from_midstate(state: tuple[int, ...], tail: bytes, total_len: int = 80) -> bytes:
    """Finish a SHA-256 whose first 64 bytes gave ``state``; ``tail`` is the rest (< 56 B)."""
    pad = tail + b"\x80" + b"\x00" * ((55 - len(tail)) % 64) + struct.pack(">Q", total_len * 8)
    for off in range(0, len(pad), 64):
        state = compress(state, pad[off : off + 64])
    return struct.pack(">8I", *state)


def next_version(version: int, mask: int) -> int:
    """Add one to the bits of ``version`` selected by ``mask`` (carry stays inside the mask)."""
    if mask == 0:
        return version
    rolled = ((version | ~mask) + 1) & mask
    return (version & ~mask & _M32) | rolled


def rolled_versions(version: int, mask: int, count: int) -> tuple[int, ...]:
    """``version`` and the next ``count - 1`` versions stepped through ``mask``."""
    out = [version]
    for _ in range(count - 1):
        out.append(next_version(out[-1], mask))
    return tuple(out)

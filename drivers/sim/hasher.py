"""Real double-SHA-256 nonce search for the simulated hashing cores.

A simulated chip does the same arithmetic as silicon: it finishes the block header
hash for each nonce it owns and reports the ones whose hash is at or below its
ticket target. Two scanners cover the family:

- :class:`HeaderScanner` (BM1366/68/70) knows the whole header, so it hashes the
  first 64 bytes once with hashlib and copies that state for every nonce.
- :class:`MidstateScanner` (BM1397) only receives SHA-256 midstates, which hashlib
  cannot import; it finishes the second block with OpenSSL's ``SHA256_Transform``
  through ctypes when libcrypto exports it, else with a plain-Python compression.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import struct
from collections.abc import Callable
from fractions import Fraction

DIFF1_TARGET = 0xFFFF << 208
"""Target of difficulty 1 (nbits 0x1d00ffff): the unit of share and ticket difficulty."""

MAX_TARGET = (1 << 256) - 1


def target_for_difficulty(difficulty: float) -> int:
    """Largest hash value (little-endian integer) that meets ``difficulty``; may be < 1."""
    if difficulty <= 0:
        raise ValueError(f"difficulty must be > 0, got {difficulty}")
    return min(MAX_TARGET, int(Fraction(DIFF1_TARGET) / Fraction(difficulty)))


def hash_value(digest: bytes) -> int:
    """A header hash as the number compared against targets (Bitcoin reads it little-endian)."""
    return int.from_bytes(digest, "little")


def nonce_for_offset(offset: int, cores: int, address: int) -> int:
    """Big-endian nonce for the ``offset``-th nonce a chip owns.

    Silicon splits the 32-bit nonce (read big-endian) as core id in bits 25-31 and
    chip address in bits 17-24, leaving 17 bits per core; the host reads both back
    out of every reply. Offsets walk the cores first so all of them get work.
    """
    low, core = divmod(offset, cores)
    return (core << 25) | (address << 17) | low


NONCES_PER_CORE = 1 << 17

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


def compress_py(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    """One SHA-256 compression (FIPS 180-4) of a 64-byte block into ``state``."""
    w = list(_BLOCK.unpack(block))
    for i in range(16, 64):
        x, y = w[i - 15], w[i - 2]
        s0 = ((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)
        s1 = ((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & _M)
    a, b, c, d, e, f, g, h = state
    for i in range(64):
        s1 = ((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))
        t1 = (h + (s1 & _M) + ((e & f) ^ (~e & g)) + _K[i] + w[i]) & _M
        s0 = ((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))
        t2 = ((s0 & _M) + ((a & b) ^ (a & c) ^ (b & c))) & _M
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M, c, b, a, (t1 + t2) & _M
    return tuple((s + v) & _M for s, v in zip(state, (a, b, c, d, e, f, g, h), strict=True))


class _Sha256Ctx(ctypes.Structure):
    # OpenSSL's SHA256_CTX: the eight state words come first.
    _fields_ = (
        ("h", ctypes.c_uint32 * 8),
        ("nl", ctypes.c_uint32),
        ("nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    )


def _load_openssl_transform() -> Callable[[ctypes.Structure, bytes], None] | None:
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        fn = lib.SHA256_Transform
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
    fn.restype = None
    return fn


_OPENSSL_TRANSFORM = _load_openssl_transform()


def second_block(tail12: bytes, nonce: bytes) -> bytes:
    """The padded second SHA-256 block of an 80-byte header."""
    return tail12 + nonce + b"\x80" + bytes(39) + (640).to_bytes(8, "big")


class HeaderScanner:
    """Scans nonces of one full header (version already rolled) with a hashlib midstate."""

    __slots__ = ("_base", "_tail12")

    def __init__(self, first64: bytes, tail12: bytes) -> None:
        if len(first64) != 64 or len(tail12) != 12:
            raise ValueError("header split must be 64 + 12 bytes")
        self._base = hashlib.sha256(first64)
        self._tail12 = tail12

    def scan(self, start: int, count: int, cores: int, address: int, target: int) -> list[int]:
        """Hash offsets ``start..start+count`` and return the big-endian nonces that hit."""
        base, tail, sha = self._base, self._tail12, hashlib.sha256
        addr_bits = address << 17
        hits = []
        for offset in range(start, start + count):
            low, core = divmod(offset, cores)
            nonce = (core << 25) | addr_bits | low
            h = base.copy()
            h.update(tail + nonce.to_bytes(4, "big"))
            if int.from_bytes(sha(h.digest()).digest(), "little") <= target:
                hits.append(nonce)
        return hits


class MidstateScanner:
    """Scans nonces from a raw SHA-256 midstate (the BM1397 job format)."""

    __slots__ = ("_ctx", "_state", "_state_raw", "_tail12")

    def __init__(self, state: tuple[int, ...], tail12: bytes) -> None:
        if len(state) != 8 or len(tail12) != 12:
            raise ValueError("midstate needs 8 words and a 12-byte tail")
        self._state = tuple(state)
        self._state_raw = _STATE_NATIVE.pack(*state)
        self._tail12 = tail12
        self._ctx = _Sha256Ctx() if _OPENSSL_TRANSFORM is not None else None

    def digest(self, nonce: bytes) -> bytes:
        """Double SHA-256 of the header ending in ``nonce`` (4 header bytes)."""
        block = second_block(self._tail12, nonce)
        if self._ctx is None:
            first = _STATE_BE.pack(*compress_py(self._state, block))
        else:
            ctypes.memmove(ctypes.addressof(self._ctx), self._state_raw, 32)
            _OPENSSL_TRANSFORM(ctypes.byref(self._ctx), block)
            first = _STATE_BE.pack(*self._ctx.h)
        return hashlib.sha256(first).digest()

    def scan(self, start: int, count: int, cores: int, address: int, target: int) -> list[int]:
        """Same contract as :meth:`HeaderScanner.scan`."""
        addr_bits = address << 17
        hits = []
        digest = self.digest
        for offset in range(start, start + count):
            low, core = divmod(offset, cores)
            nonce = (core << 25) | addr_bits | low
            if int.from_bytes(digest(nonce.to_bytes(4, "big")), "little") <= target:
                hits.append(nonce)
        return hits


def openssl_transform_available() -> bool:
    """Whether BM1397 scanning uses libcrypto (fast) rather than plain Python."""
    return _OPENSSL_TRANSFORM is not None

"""Real double-SHA-256 nonce search for the simulated hashing cores.

A simulated chip does the same arithmetic as silicon: it finishes the block header
hash for each nonce it owns and reports the ones whose hash is at or below its
ticket target. Two scanners cover the family:

- :class:`HeaderScanner` (BM1366/68/70) knows the whole header, so it hashes the
  first 64 bytes once with hashlib and copies that state for every nonce.
- :class:`MidstateScanner` (BM1397) only receives SHA-256 midstates, which hashlib
  cannot import; :func:`drivers.sha256_state.block_hasher` finishes the second block
  (OpenSSL's ``SHA256_Transform`` when usable, else plain Python).

Both walk the nonces :func:`owned_nonces` lists and keep the hashing inline in their
own loop: that loop is the sim's hot path.
"""

from __future__ import annotations

import hashlib

from drivers.sha256_state import block_hasher

NONCES_PER_CORE = 1 << 17


def owned_nonces(start: int, count: int, cores: int, address: int) -> list[int]:
    """Big-endian nonces for a chip's offsets ``start..start+count``.

    Silicon splits the 32-bit nonce (read big-endian) as core id in bits 25-31 and
    chip address in bits 17-24, leaving 17 bits per core; the host reads both back
    out of every reply. Offsets walk the cores first so all of them get work.
    """
    addr_bits = address << 17
    return [
        ((offset % cores) << 25) | addr_bits | (offset // cores)
        for offset in range(start, start + count)
    ]


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

    def digest(self, nonce: bytes) -> bytes:
        """Double SHA-256 of the header ending in ``nonce`` (4 header bytes)."""
        h = self._base.copy()
        h.update(self._tail12 + nonce)
        return hashlib.sha256(h.digest()).digest()

    def scan(self, start: int, count: int, cores: int, address: int, target: int) -> list[int]:
        """Hash offsets ``start..start+count`` and return the big-endian nonces that hit."""
        base, tail, sha = self._base, self._tail12, hashlib.sha256
        hits = []
        for nonce in owned_nonces(start, count, cores, address):
            h = base.copy()
            h.update(tail + nonce.to_bytes(4, "big"))
            if int.from_bytes(sha(h.digest()).digest(), "little") <= target:
                hits.append(nonce)
        return hits


class MidstateScanner:
    """Scans nonces from a raw SHA-256 midstate (the BM1397 job format)."""

    __slots__ = ("_first", "_tail12")

    def __init__(self, state: tuple[int, ...], tail12: bytes) -> None:
        if len(state) != 8 or len(tail12) != 12:
            raise ValueError("midstate needs 8 words and a 12-byte tail")
        self._first = block_hasher(state)
        self._tail12 = tail12

    def digest(self, nonce: bytes) -> bytes:
        """Double SHA-256 of the header ending in ``nonce`` (4 header bytes)."""
        return hashlib.sha256(self._first(second_block(self._tail12, nonce))).digest()

    def scan(self, start: int, count: int, cores: int, address: int, target: int) -> list[int]:
        """Same contract as :meth:`HeaderScanner.scan`."""
        first, tail, sha = self._first, self._tail12, hashlib.sha256
        hits = []
        for nonce in owned_nonces(start, count, cores, address):
            block = second_block(tail, nonce.to_bytes(4, "big"))
            if int.from_bytes(sha(first(block)).digest(), "little") <= target:
                hits.append(nonce)
        return hits

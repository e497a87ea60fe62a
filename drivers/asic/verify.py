"""Host-side nonce verification: every nonce is re-hashed before it counts.

The hot path hashes only 16 bytes per nonce: the SHA-256 state after the header's first
64 bytes (version, prev hash, 28 bytes of merkle root) is kept as a ``hashlib`` object per
rolled version and ``copy()``-ed for each nonce.
"""

from __future__ import annotations

import hashlib
import struct

from drivers.asic.bm13xx.registers import power_of_two_floor

from .job import MiningJob

DIFF1_TARGET = 0xFFFF << 208
TICKET_BASE = 1 << 224
_MAX_CACHED_VERSIONS = 512


def ticket_target(difficulty: int) -> int:
    """Hashes below this pass a ticket mask of ``difficulty`` (rounded to a power of two)."""
    return TICKET_BASE // power_of_two_floor(difficulty)


def hash_difficulty(hash_value: int) -> float:
    """Pool difficulty a hash achieves (diff-1 target 0xFFFF << 208)."""
    return DIFF1_TARGET / max(hash_value, 1)


class HeaderHasher:
    """Double SHA-256 of one job's header for any (version, nonce), midstate-cached."""

    __slots__ = ("_job", "_mid", "_tail")

    def __init__(self, job: MiningJob) -> None:
        self._job = job
        self._mid: dict[int, hashlib._Hash] = {}
        self._tail = job.merkle_root[28:] + struct.pack("<II", job.ntime, job.nbits)

    def _midstate(self, version: int) -> hashlib._Hash:
        mid = self._mid.get(version)
        if mid is None:
            if len(self._mid) >= _MAX_CACHED_VERSIONS:
                self._mid.clear()
            mid = hashlib.sha256(
                struct.pack("<I", version) + self._job.prev_hash + self._job.merkle_root[:28]
            )
            self._mid[version] = mid
        return mid

    def hash(self, version: int, nonce: int) -> bytes:
        """Block hash in internal byte order (reverse it for display)."""
        inner = self._midstate(version).copy()
        inner.update(self._tail + struct.pack("<I", nonce))
        return hashlib.sha256(inner.digest()).digest()

    def hash_value(self, version: int, nonce: int) -> int:
        return int.from_bytes(self.hash(version, nonce), "little")

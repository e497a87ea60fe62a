"""Host-side nonce verification: every nonce is re-hashed before it counts.

The hot path hashes only 16 bytes per nonce: the SHA-256 state after the header's first
64 bytes (version, prev hash, 28 bytes of merkle root) is kept as a ``hashlib`` object per
rolled version and ``copy()``-ed for each nonce.
"""

from __future__ import annotations

import hashlib
import struct
from fractions import Fraction

from protocols.stratum_v1.work import target_to_difficulty

from .job import MiningJob

TICKET_BASE = 1 << 224
"""Ticket difficulty 1 on the chips: the hash's top 32 bits are zero (not pool diff-1)."""
_MAX_CACHED_VERSIONS = 512


def ticket_target(difficulty: float) -> int:
    """Hashes below this pass a ticket of ``difficulty`` (a chip mask needs a power of two)."""
    return int(Fraction(TICKET_BASE) / Fraction(difficulty))


def hash_difficulty(hash_value: int) -> float:
    """Pool difficulty a hash achieves; a zero hash counts as 1 so the result stays finite."""
    return target_to_difficulty(max(hash_value, 1))


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

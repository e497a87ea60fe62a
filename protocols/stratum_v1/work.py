"""Turning stratum job fields into a block header, and shares into difficulties.

Byte orders, the classic source of stratum bugs:
- ``mining.notify`` sends prevhash as the header's 32 bytes with every 4-byte word
  byte-swapped (``swap_words``); events hold the header order.
- merkle branch entries and the merkle root are raw SHA256d outputs (header order).
- version, nbits, ntime and nonce are sent as big-endian hex and stored little-endian
  in the header.
- a hash is compared with a target as a little-endian 256-bit integer.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from fractions import Fraction

from protocols.bitcoin.pow import bits_to_target as decode_bits

_sha256 = hashlib.sha256
_pack_header_tail = struct.Struct("<III").pack

DIFF1_TARGET = 0x00000000FFFF0000000000000000000000000000000000000000000000000000
MAX_TARGET = (1 << 256) - 1
BIP320_VERSION_MASK = 0x1FFFE000


def sha256d(data: bytes | bytearray | memoryview) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


def swap_words(data: bytes) -> bytes:
    """Byte-swap every 4-byte word (stratum's prevhash encoding; its own inverse)."""
    if len(data) % 4:
        raise ValueError("length must be a multiple of 4")
    words = struct.unpack(f"<{len(data) // 4}I", data)
    return struct.pack(f">{len(words)}I", *words)


def build_coinbase(coinb1: bytes, extranonce1: bytes, extranonce2: bytes, coinb2: bytes) -> bytes:
    """The coinbase transaction as the miner hashes it (non-witness serialization)."""
    return b"".join((coinb1, extranonce1, extranonce2, coinb2))


def merkle_root_from_branch(coinbase_txid: bytes, branch: Iterable[bytes]) -> bytes:
    """Fold the coinbase txid up the branch: root = SHA256d(root ‖ sibling) per level."""
    root = coinbase_txid
    for sibling in branch:
        root = _sha256(_sha256(root + sibling).digest()).digest()
    return root


def merkle_branch_for_coinbase(txids: list[bytes]) -> list[bytes]:
    """The branch a pool sends for a block whose transactions are ``txids`` (coinbase first).

    The coinbase's own txid is not needed to derive its siblings, so ``txids[0]`` may be any
    placeholder.
    """
    branch: list[bytes] = []
    level = list(txids)
    while len(level) > 1:
        branch.append(level[1])
        if len(level) % 2:
            level.append(level[-1])
        level = [
            _sha256(_sha256(level[i] + level[i + 1]).digest()).digest()
            for i in range(2, len(level), 2)
        ]
        level.insert(0, b"")  # the coinbase path's node, unknown here and never read
    return branch


def build_header(
    version: int, prevhash: bytes, merkle_root: bytes, ntime: int, nbits: int, nonce: int
) -> bytes:
    """80-byte block header; ``prevhash`` and ``merkle_root`` in header byte order."""
    if len(prevhash) != 32 or len(merkle_root) != 32:
        raise ValueError("prevhash and merkle_root must be 32 bytes")
    return (
        struct.pack("<I", version & 0xFFFFFFFF)
        + prevhash
        + merkle_root
        + _pack_header_tail(ntime & 0xFFFFFFFF, nbits & 0xFFFFFFFF, nonce & 0xFFFFFFFF)
    )


def header_hash(header: bytes) -> bytes:
    return sha256d(header)


def hash_to_int(h: bytes) -> int:
    """A hash as the number compared with targets (little-endian)."""
    return int.from_bytes(h, "little")


def hash_to_display(h: bytes) -> str:
    """Block-explorer form: byte-reversed hex."""
    return h[::-1].hex()


def bits_to_target(nbits: int) -> int:
    """Expand compact ``nbits`` to the network target (negative/overflow forms → 0)."""
    decoded = decode_bits(nbits)
    return 0 if decoded.negative or decoded.overflow else decoded.target


def difficulty_to_target(difficulty: float | int | Fraction) -> int:
    """Share target for a pool difficulty: DIFF1_TARGET / difficulty, exact for floats."""
    d = Fraction(difficulty)
    if d <= 0:
        raise ValueError("difficulty must be positive")
    return min(MAX_TARGET, int(Fraction(DIFF1_TARGET) / d))


def target_to_difficulty(target: int) -> float:
    """Pool difficulty of a target (or of a hash value: how hard the share was)."""
    if target <= 0:
        return float("inf")
    return DIFF1_TARGET / target


def hash_difficulty(h: bytes) -> float:
    """Difficulty a share hash achieved (compare against the pool's current difficulty)."""
    return target_to_difficulty(hash_to_int(h))


def apply_version_bits(job_version: int, version_bits: int | None, mask: int) -> int:
    """BIP310 rolled version: job bits outside the mask, miner bits inside it."""
    if version_bits is None:
        return job_version
    return (job_version & ~mask & 0xFFFFFFFF) | (version_bits & mask)


def version_bits_allowed(version_bits: int, mask: int, job_version: int | None = None) -> bool:
    """True when ``version_bits`` changes nothing outside ``mask``.

    Miners send either the full rolled version or just the rolled bits; both are fine as
    long as every bit outside the mask is zero or equals the job's own bit.
    """
    outside = version_bits & ~mask & 0xFFFFFFFF
    if outside == 0:
        return True
    return job_version is not None and outside == job_version & ~mask & 0xFFFFFFFF


def negotiate_version_mask(pool_mask: int, miner_mask: int) -> int:
    """The mask both sides may roll: the intersection (BIP310)."""
    return pool_mask & miner_mask & 0xFFFFFFFF

"""Merkle roots with Bitcoin Core's duplicate-leaf mutation check (CVE-2012-2459)."""

from __future__ import annotations

import hashlib
from operator import eq

_sha256 = hashlib.sha256


def merkle_root(hashes: list[bytes]) -> tuple[bytes, bool]:
    """Return (root, mutated) for leaf hashes in internal byte order.

    ``mutated`` is True when two identical siblings were hashed together at any
    level: such a tree has the same root as a different transaction list, so a
    block with it must be rejected (``bad-txns-duplicate``) without marking the
    header invalid.
    """
    if not hashes:
        return b"\x00" * 32, False
    level = list(hashes)
    if len(b"".join(level)) != 32 * len(level):
        raise ValueError("merkle leaves must be 32-byte hashes")
    mutated = False
    sha = _sha256
    while len(level) > 1:
        # Compare siblings pairwise at C speed before padding an odd level.
        if not mutated and any(map(eq, level[0::2], level[1::2])):
            mutated = True
        if len(level) & 1:
            level.append(level[-1])
        joined = b"".join(level)
        level = [sha(sha(joined[i : i + 64]).digest()).digest() for i in range(0, len(joined), 64)]
    return level[0], mutated


def merkle_branch(hashes: list[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf ``index`` up to the root (for Stratum's coinbase branch)."""
    branch: list[bytes] = []
    level = list(hashes)
    while len(level) > 1:
        if len(level) & 1:
            level.append(level[-1])
        branch.append(level[index ^ 1])
        index >>= 1
        level = [
            _sha256(_sha256(level[i] + level[i + 1]).digest()).digest()
            for i in range(0, len(level), 2)
        ]
    return branch


def root_from_branch(leaf: bytes, branch: list[bytes], index: int = 0) -> bytes:
    """Fold a leaf up a merkle branch."""
    h = leaf
    for sibling in branch:
        pair = sibling + h if index & 1 else h + sibling
        h = _sha256(_sha256(pair).digest()).digest()
        index >>= 1
    return h

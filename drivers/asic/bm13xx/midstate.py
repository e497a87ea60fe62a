"""BM1397 midstates in wire form, and BIP320 version stepping.

The BM1397 wants the eight SHA-256 state words after a header's first 64 bytes. A new
block's clean job needs four of them, so they sit on the new-tip latency path; the state
arithmetic (and its OpenSSL fast path) lives in :mod:`drivers.sha256_state`, shared with
the simulated chips that finish headers from these words.
"""

from __future__ import annotations

import struct

from drivers.sha256_state import midstate_words

_M32 = 0xFFFFFFFF


def midstate_wire(first64: bytes) -> bytes:
    """Midstate as a BM1397 job frame carries it: words h7..h0, each big-endian."""
    return struct.pack(">8I", *reversed(midstate_words(first64)))


def words_from_wire(wire: bytes) -> tuple[int, ...]:
    """Inverse of :func:`midstate_wire`."""
    return tuple(reversed(struct.unpack(">8I", wire)))


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

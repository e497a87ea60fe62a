"""Build header chains with real (cheap) proof of work for header-tree tests.

Regtest-style pow limits make a valid nonce a few tries away, so tests exercise the real
PoW check instead of bypassing it.
"""

from __future__ import annotations

import hashlib
import struct

from node.chain.headers import HeaderEntry, HeaderTree
from protocols.bitcoin.pow import bits_to_target

_HEADER = struct.Struct("<i32s32sIII")


def mine(prev_hash: bytes, time: int, bits: int, version: int = 0x20000000, tag: int = 0) -> bytes:
    """An 80-byte header on ``prev_hash`` whose hash meets ``bits`` (``tag`` varies the root)."""
    target = bits_to_target(bits).target
    root = hashlib.sha256(prev_hash + tag.to_bytes(8, "little")).digest()
    for nonce in range(1 << 32):
        raw = _HEADER.pack(version, prev_hash, root, time, bits, nonce)
        h = hashlib.sha256(hashlib.sha256(raw).digest()).digest()
        if int.from_bytes(h, "little") <= target:
            return raw
    raise RuntimeError("no nonce found")


def extend(
    tree: HeaderTree,
    parent: HeaderEntry,
    count: int,
    *,
    spacing: int = 600,
    tag: int = 0,
    now: int | None = None,
) -> list[HeaderEntry]:
    """Mine and accept ``count`` headers on ``parent`` with the bits the rules require."""
    out = []
    for i in range(count):
        time = parent.time + spacing
        bits = tree.next_work_required(parent, time)
        parent = tree.accept(mine(parent.hash, time, bits, tag=tag * 1_000_003 + i), now)
        out.append(parent)
    return out

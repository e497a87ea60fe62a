"""The mempool file (our mempool.dat): versioned, checksummed, written atomically.

Layout (little-endian)::

    magic "BLVMMEMP" | u32 version (1) | u64 count
    count x (u32 length | transaction bytes with witness | i64 entry time | i64 fee delta)
    u64 count2 | count2 x (32-byte txid | i64 fee delta)    deltas of txs not in the pool
    32-byte SHA-256 of everything before it

A crash while saving leaves the previous file intact: the new one is written to
``<path>.tmp``, fsynced, renamed over ``path``, and the directory is fsynced.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from node.mempool.errors import MempoolPersistError

MAGIC = b"BLVMMEMP"
VERSION = 1
_HEAD = struct.Struct("<8sIQ")
_LEN = struct.Struct("<I")
_REC = struct.Struct("<qq")
_COUNT = struct.Struct("<Q")
_DELTA = struct.Struct("<32sq")


@dataclass(frozen=True, slots=True)
class SavedTx:
    raw: bytes
    time: int
    delta: int


def encode(txs: list[SavedTx], deltas: dict[bytes, int]) -> bytes:
    parts = [_HEAD.pack(MAGIC, VERSION, len(txs))]
    for rec in txs:
        parts += (_LEN.pack(len(rec.raw)), rec.raw, _REC.pack(rec.time, rec.delta))
    parts.append(_COUNT.pack(len(deltas)))
    parts += (_DELTA.pack(txid, delta) for txid, delta in deltas.items())
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def decode(data: bytes) -> tuple[list[SavedTx], dict[bytes, int]]:
    if len(data) < _HEAD.size + 32:
        raise MempoolPersistError("mempool file truncated")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise MempoolPersistError("mempool file checksum mismatch (truncated or corrupt)")
    magic, version, count = _HEAD.unpack_from(body, 0)
    if magic != MAGIC:
        raise MempoolPersistError("not a mempool file (bad magic)")
    if version != VERSION:
        raise MempoolPersistError(f"mempool file version {version} not supported")
    pos = _HEAD.size
    txs = []
    try:
        for _ in range(count):
            (n,) = _LEN.unpack_from(body, pos)
            pos += _LEN.size
            raw = body[pos : pos + n]
            if len(raw) != n:
                raise MempoolPersistError("mempool file truncated")
            pos += n
            t, delta = _REC.unpack_from(body, pos)
            pos += _REC.size
            txs.append(SavedTx(raw, t, delta))
        (n_deltas,) = _COUNT.unpack_from(body, pos)
        pos += _COUNT.size
        deltas = {}
        for _ in range(n_deltas):
            txid, delta = _DELTA.unpack_from(body, pos)
            pos += _DELTA.size
            deltas[txid] = delta
    except struct.error:
        raise MempoolPersistError("mempool file truncated") from None
    if pos != len(body):
        raise MempoolPersistError("trailing data in mempool file")
    return txs, deltas


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new file."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Fixtures for the Stratum V1 tests: a real mainnet block cut into stratum job fields."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest


def _sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    if first < 0xFD:
        return first, pos + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(buf[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def _split_tx(buf: bytes, pos: int) -> tuple[bytes, int, int]:
    """Return (non-witness tx bytes, scriptSig offset of input 0 within them, end pos)."""
    start = pos
    pos += 4
    if buf[pos] == 0 and buf[pos + 1] == 1:
        raise AssertionError("witness tx in a pre-segwit block")
    n_in, pos = _varint(buf, pos)
    script0 = None
    for i in range(n_in):
        pos += 36
        slen, pos = _varint(buf, pos)
        if i == 0:
            script0 = pos - start
        pos += slen + 4
    n_out, pos = _varint(buf, pos)
    for _ in range(n_out):
        pos += 8
        slen, pos = _varint(buf, pos)
        pos += slen
    pos += 4
    assert script0 is not None
    return buf[start:pos], script0, pos


@dataclass(frozen=True)
class RealBlock:
    header: bytes
    coinbase: bytes
    script_sig_offset: int
    txids: list[bytes]
    block_hash_hex: str


@pytest.fixture(scope="session")
def block_413567(core_vectors) -> RealBlock:
    raw = (core_vectors / "block413567.raw").read_bytes()
    count, pos = _varint(raw, 80)
    txs = []
    offset0 = 0
    for i in range(count):
        tx, script_off, pos = _split_tx(raw, pos)
        if i == 0:
            offset0 = script_off
        txs.append(tx)
    assert pos == len(raw)
    return RealBlock(
        header=raw[:80],
        coinbase=txs[0],
        script_sig_offset=offset0,
        txids=[_sha256d(t) for t in txs],
        # well-known hash of mainnet block 413567 (the block Bitcoin Core benchmarks with)
        block_hash_hex="0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069",
    )

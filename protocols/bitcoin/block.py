"""Block headers and blocks."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from protocols.bitcoin.compact import compact_size, read_compact_size
from protocols.bitcoin.errors import DecodeError
from protocols.bitcoin.hashes import hash_to_hex, sha256d
from protocols.bitcoin.tx import Tx

HEADER_SIZE = 80
_HEADER = struct.Struct("<i32s32sIII")


@dataclass(slots=True)
class BlockHeader:
    version: int
    prev_hash: bytes  # internal byte order
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    @classmethod
    def parse(cls, buf: bytes | memoryview, pos: int = 0) -> BlockHeader:
        try:
            return cls(*_HEADER.unpack_from(buf, pos))
        except struct.error:
            raise DecodeError("truncated block header") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> BlockHeader:
        if len(data) != HEADER_SIZE:
            raise DecodeError(f"block header must be 80 bytes, got {len(data)}")
        return cls.parse(data)

    def serialize(self) -> bytes:
        return _HEADER.pack(
            self.version, self.prev_hash, self.merkle_root, self.time, self.bits, self.nonce
        )

    @property
    def hash(self) -> bytes:
        return sha256d(self.serialize())

    @property
    def hash_hex(self) -> str:
        return hash_to_hex(self.hash)


@dataclass(slots=True, eq=False)
class Block:
    header: BlockHeader
    txs: list[Tx] = field(default_factory=list)
    _size: int = field(default=-1, repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> Block:
        """Parse a whole serialized block; trailing bytes are an error."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        header = BlockHeader.parse(data, 0)
        count, pos = read_compact_size(data, HEADER_SIZE)
        # No decodable tx is shorter than 51 bytes (one input, no outputs): refuse absurd
        # counts before allocating, without rejecting anything Core would decode.
        if count * 51 > len(data) - pos:
            raise DecodeError("transaction count exceeds block size")
        parse = Tx.parse
        txs = []
        append = txs.append
        for _ in range(count):
            tx, pos = parse(data, pos)
            append(tx)
        if pos != len(data):
            raise DecodeError("trailing data after block")
        return cls(header, txs, len(data))

    @classmethod
    def from_hex(cls, text: str) -> Block:
        try:
            data = bytes.fromhex(text.strip())
        except ValueError as exc:
            raise DecodeError(f"not hex: {exc}") from None
        return cls.from_bytes(data)

    def serialize(self, with_witness: bool = True) -> bytes:
        parts = [self.header.serialize(), compact_size(len(self.txs))]
        parts += (tx.serialize(with_witness) for tx in self.txs)
        return b"".join(parts)

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def hash_hex(self) -> str:
        return self.header.hash_hex

    @property
    def size(self) -> int:
        if self._size < 0:
            self._size = len(self.serialize())
        return self._size

    @property
    def base_size(self) -> int:
        n = len(self.txs)
        return HEADER_SIZE + len(compact_size(n)) + sum(tx.base_size for tx in self.txs)

    @property
    def weight(self) -> int:
        return self.base_size * 3 + self.size

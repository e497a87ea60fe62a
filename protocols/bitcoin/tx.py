"""Transactions: parse, serialize, txid/wtxid, weight.

Parsing sits on the block-validation hot path, so ``Tx.parse`` is written for
speed: one pass, ``struct.unpack_from`` on the caller's buffer, the common
one-byte CompactSize inlined, and the raw span kept so txid/wtxid are hashed
from slices instead of re-serialized. Outpoints are kept as their raw 36 bytes
(txid || index LE), which is also the UTXO-set key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from protocols.bitcoin.compact import compact_size, read_compact_size
from protocols.bitcoin.errors import DecodeError
from protocols.bitcoin.hashes import hash_to_hex, sha256d

WITNESS_SCALE_FACTOR = 4
SEQUENCE_FINAL = 0xFFFFFFFF
NULL_OUTPOINT = b"\x00" * 32 + b"\xff\xff\xff\xff"

_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_Q = struct.Struct("<q").unpack_from
_PREVOUT_LEN = struct.Struct("<36sB").unpack_from  # outpoint + first script-length byte
_VALUE_LEN = struct.Struct("<qB").unpack_from  # amount + first script-length byte
_SEQ_PREVOUT_LEN = struct.Struct("<I36sB").unpack_from  # sequence + next outpoint + length
_SEQ_BYTE = struct.Struct("<IB").unpack_from  # last sequence + first byte after it
_new = object.__new__


def outpoint(txid: bytes, index: int) -> bytes:
    """The 36-byte serialized outpoint (txid in internal byte order)."""
    return txid + index.to_bytes(4, "little")


@dataclass(slots=True)
class TxIn:
    prevout: bytes  # 36 bytes: txid (internal order) || output index (LE)
    script_sig: bytes = b""
    sequence: int = SEQUENCE_FINAL
    # Empty tuple when absent (saves an allocation per input); a list once parsed or set.
    witness: list[bytes] | tuple[()] = ()

    @property
    def prev_txid(self) -> bytes:
        return self.prevout[:32]

    @property
    def prev_index(self) -> int:
        return _U32(self.prevout, 32)[0]


@dataclass(slots=True)
class TxOut:
    value: int
    script_pubkey: bytes

    def serialize(self) -> bytes:
        return (
            self.value.to_bytes(8, "little", signed=True)
            + compact_size(len(self.script_pubkey))
            + self.script_pubkey
        )


@dataclass(slots=True, eq=False)
class Tx:
    version: int
    inputs: list[TxIn]
    outputs: list[TxOut]
    locktime: int = 0
    # Caches filled by parse() or on first use; not part of equality.
    _raw: bytes | None = field(default=None, repr=False)
    _base_end: int = field(default=-1, repr=False)  # offset in _raw where outputs end
    _txid: bytes | None = field(default=None, repr=False)
    _wtxid: bytes | None = field(default=None, repr=False)

    # -- parsing -------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> Tx:
        """Parse exactly one transaction; trailing bytes are an error."""
        if not isinstance(data, bytes):
            data = bytes(data)  # slices of a memoryview would stay views of the caller's buffer
        tx, end = cls.parse(data, 0)
        if end != len(data):
            raise DecodeError("trailing data after transaction")
        return tx

    @classmethod
    def from_hex(cls, text: str) -> Tx:
        try:
            data = bytes.fromhex(text.strip())
        except ValueError as exc:
            raise DecodeError(f"not hex: {exc}") from None
        return cls.from_bytes(data)

    @classmethod
    def parse(cls, buf: bytes, pos: int = 0) -> tuple[Tx, int]:
        """Parse one transaction from ``buf`` at ``pos``; returns (tx, end position)."""
        start = pos
        try:
            version = _I32(buf, pos)[0]
            pos += 4
            n = buf[pos]
            segwit = False
            if n == 0:
                if buf[pos + 1] != 1:
                    raise DecodeError("unknown transaction serialization flag")
                segwit = True
                pos += 2
                n = buf[pos]
            if n < 0xFD:
                pos += 1
            else:
                n, pos = read_compact_size(buf, pos)
            if n == 0 and segwit:
                raise DecodeError("superfluous witness record")
            # Objects are made with object.__new__ and slot stores: on CPython 3.11 this is
            # ~40 % cheaper than calling the dataclass __init__, and parsing a block is
            # mostly object creation. Every field is set, exactly as __init__ would.
            # The sequence of each input is unpacked together with the next input's
            # outpoint and script-length byte (and the last one with the output count's
            # first byte): one struct call per input instead of two.
            inputs = []
            append = inputs.append
            if n:
                prevout, ln = _PREVOUT_LEN(buf, pos)
                for _ in range(n - 1):
                    if ln < 0xFD:
                        pos += 37
                    else:
                        ln, pos = read_compact_size(buf, pos + 36)
                    end = pos + ln
                    txin = _new(TxIn)
                    txin.prevout = prevout
                    txin.script_sig = buf[pos:end]
                    txin.witness = ()
                    txin.sequence, prevout, ln = _SEQ_PREVOUT_LEN(buf, end)
                    append(txin)
                    pos = end + 4
                if ln < 0xFD:
                    pos += 37
                else:
                    ln, pos = read_compact_size(buf, pos + 36)
                end = pos + ln
                txin = _new(TxIn)
                txin.prevout = prevout
                txin.script_sig = buf[pos:end]
                txin.witness = ()
                txin.sequence, n = _SEQ_BYTE(buf, end)
                append(txin)
                pos = end + 4
            else:
                n = buf[pos]
            if n < 0xFD:
                pos += 1
            else:
                n, pos = read_compact_size(buf, pos)
            outputs = []
            append = outputs.append
            for _ in range(n):
                value, ln = _VALUE_LEN(buf, pos)
                if ln < 0xFD:
                    pos += 9
                else:
                    ln, pos = read_compact_size(buf, pos + 8)
                txout = _new(TxOut)
                txout.value = value
                end = pos + ln
                txout.script_pubkey = buf[pos:end]
                append(txout)
                pos = end
            base_end = pos
            if segwit:
                has_witness = False
                for txin in inputs:
                    count = buf[pos]
                    if count < 0xFD:
                        pos += 1
                    else:
                        count, pos = read_compact_size(buf, pos)
                    stack = txin.witness = []
                    for _ in range(count):
                        ln = buf[pos]
                        if ln < 0xFD:
                            pos += 1
                        else:
                            ln, pos = read_compact_size(buf, pos)
                        stack.append(buf[pos : pos + ln])
                        pos += ln
                    if count:
                        has_witness = True
                if not has_witness:
                    raise DecodeError("superfluous witness record")
            locktime = _U32(buf, pos)[0]
            pos += 4
        except (IndexError, struct.error):
            raise DecodeError("truncated transaction") from None
        if pos > len(buf):
            raise DecodeError("truncated transaction")
        tx = _new(cls)
        tx.version = version
        tx.inputs = inputs
        tx.outputs = outputs
        tx.locktime = locktime
        tx._raw = buf[start:pos]
        tx._base_end = base_end - start if segwit else -1
        tx._txid = None
        tx._wtxid = None
        return tx, pos

    # -- serialization ---------------------------------------------------------
    def has_witness(self) -> bool:
        return any(txin.witness for txin in self.inputs)

    def serialize(self, with_witness: bool = True) -> bytes:
        if not with_witness:
            return self.serialize_without_witness()
        if self._raw is not None:
            return self._raw
        return self._build(self.has_witness())

    def _build(self, witness: bool) -> bytes:
        parts = [self.version.to_bytes(4, "little", signed=True)]
        if witness:
            parts.append(b"\x00\x01")
        parts.append(compact_size(len(self.inputs)))
        for txin in self.inputs:
            parts += (
                txin.prevout,
                compact_size(len(txin.script_sig)),
                txin.script_sig,
                txin.sequence.to_bytes(4, "little"),
            )
        parts.append(compact_size(len(self.outputs)))
        for txout in self.outputs:
            parts.append(txout.serialize())
        if witness:
            for txin in self.inputs:
                parts.append(compact_size(len(txin.witness)))
                for item in txin.witness:
                    parts += (compact_size(len(item)), item)
        parts.append(self.locktime.to_bytes(4, "little"))
        return b"".join(parts)

    def serialize_without_witness(self) -> bytes:
        raw = self._raw
        if raw is None:
            return self._build(False)
        if self._base_end < 0:
            return raw
        # Drop the marker/flag and the witness section from the parsed bytes.
        return raw[:4] + raw[6 : self._base_end] + raw[-4:]

    def invalidate(self) -> None:
        """Drop cached serialization and hashes after mutating fields."""
        self._raw = None
        self._base_end = -1
        self._txid = None
        self._wtxid = None

    # -- identity and size -------------------------------------------------------
    @property
    def txid(self) -> bytes:
        """Hash of the serialization without witness (internal byte order)."""
        if self._txid is None:
            self._txid = sha256d(self.serialize_without_witness())
        return self._txid

    @property
    def wtxid(self) -> bytes:
        if self._wtxid is None:
            self._wtxid = sha256d(self.serialize(with_witness=True))
        return self._wtxid

    @property
    def txid_hex(self) -> str:
        return hash_to_hex(self.txid)

    @property
    def base_size(self) -> int:
        if self._raw is not None:
            return len(self._raw) if self._base_end < 0 else self._base_end + 2
        return len(self._build(False))

    @property
    def total_size(self) -> int:
        return len(self.serialize(with_witness=True))

    @property
    def weight(self) -> int:
        return self.base_size * (WITNESS_SCALE_FACTOR - 1) + self.total_size

    @property
    def vsize(self) -> int:
        return (self.weight + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR

    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].prevout == NULL_OUTPOINT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tx):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(self.wtxid)

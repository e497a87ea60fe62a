"""Stratum V2 binary data types (all little-endian) with maximum-length enforcement.

Each wire type is a small object that encodes a Python value into a `bytearray` and decodes one
from `bytes` at a position, bounded by an explicit end so a declared length can never read (or
allocate) past the bytes that actually arrived. Fixed-width types also expose a `struct` code so
the message layer can pack runs of them with one `struct.Struct` call (the share hot path).

Python value mapping:
  U8..U64 -> int, F32 -> float, BOOL -> bool, U256/PUBKEY/SIGNATURE/MAC/B0_*/BYTES -> bytes,
  STR0_255 -> str (UTF-8; undecodable bytes survive via surrogateescape),
  SEQ0_255[T]/SEQ0_64K[T] -> tuple, OPTION[T] -> value or None.
"""

from __future__ import annotations

import struct
from typing import Any

from protocols.sv2.errors import DecodeError, EncodeError

__all__ = [
    "B0_16M",
    "B0_32",
    "B0_64K",
    "B0_255",
    "BOOL",
    "BYTES",
    "F32",
    "MAC",
    "PUBKEY",
    "SIGNATURE",
    "STR0_255",
    "U8",
    "U16",
    "U24",
    "U32",
    "U64",
    "U256",
    "FieldType",
    "Option",
    "Seq0_64K",
    "Seq0_255",
]


class FieldType:
    """A wire type. Subclasses implement `encode_into` and `decode_from`."""

    name: str = "?"
    #: Size in bytes when every value has the same size, else None.
    fixed_size: int | None = None
    #: `struct` format code when the type can join a packed run of fixed fields, else None.
    struct_code: str | None = None

    def encode_into(self, value: Any, out: bytearray) -> None:
        raise NotImplementedError

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        """Decode one value at `pos`; `buf` must be `bytes` (slices are returned as-is)."""
        raise NotImplementedError

    def check(self, value: Any) -> None:
        """Validate a value that will be packed by a struct run (ints are checked by struct)."""

    def convert(self, raw: Any) -> Any:
        """Turn a value unpacked by a struct run into the Python value (identity by default)."""
        return raw

    #: True when `convert` is not the identity (the codec then calls it).
    needs_convert: bool = False

    def encode(self, value: Any) -> bytes:
        out = bytearray()
        self.encode_into(value, out)
        return bytes(out)

    def decode(self, data: bytes) -> Any:
        """Decode exactly one value that must span all of `data`."""
        data = bytes(data)
        value, pos = self.decode_from(data, 0, len(data))
        if pos != len(data):
            raise DecodeError(f"{self.name}: {len(data) - pos} trailing bytes")
        return value

    def __repr__(self) -> str:
        return self.name


def _truncated(name: str, need: int, have: int) -> DecodeError:
    return DecodeError(f"{name}: need {need} bytes, only {max(have, 0)} left")


class _UInt(FieldType):
    def __init__(self, name: str, size: int, code: str) -> None:
        self.name = name
        self.fixed_size = size
        self.struct_code = code
        self.max = (1 << (8 * size)) - 1
        self._struct = struct.Struct("<" + code)

    def encode_into(self, value: Any, out: bytearray) -> None:
        if not isinstance(value, int) or not 0 <= value <= self.max:
            raise EncodeError(f"{self.name} out of range: {value!r}")
        out += self._struct.pack(value)

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[int, int]:
        size = self.fixed_size
        assert size is not None
        if pos + size > end:
            raise _truncated(self.name, size, end - pos)
        return self._struct.unpack_from(buf, pos)[0], pos + size


class _U24(FieldType):
    name = "U24"
    fixed_size = 3
    max = (1 << 24) - 1

    def encode_into(self, value: Any, out: bytearray) -> None:
        if not isinstance(value, int) or not 0 <= value <= self.max:
            raise EncodeError(f"U24 out of range: {value!r}")
        out += value.to_bytes(3, "little")

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[int, int]:
        if pos + 3 > end:
            raise _truncated(self.name, 3, end - pos)
        return int.from_bytes(buf[pos : pos + 3], "little"), pos + 3


class _F32(FieldType):
    name = "F32"
    fixed_size = 4
    struct_code = "f"
    _struct = struct.Struct("<f")

    def encode_into(self, value: Any, out: bytearray) -> None:
        try:
            out += self._struct.pack(value)
        except (struct.error, OverflowError, TypeError) as exc:
            raise EncodeError(f"F32: {value!r}: {exc}") from None

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[float, int]:
        if pos + 4 > end:
            raise _truncated(self.name, 4, end - pos)
        return self._struct.unpack_from(buf, pos)[0], pos + 4


class _Bool(FieldType):
    """One byte; only the low bit carries the value (other bits are reserved)."""

    name = "BOOL"
    fixed_size = 1
    struct_code = "B"
    needs_convert = True

    def check(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise EncodeError(f"BOOL expects bool, got {value!r}")

    def convert(self, raw: Any) -> bool:
        return bool(raw & 1)

    def encode_into(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out.append(1 if value else 0)

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[bool, int]:
        if pos + 1 > end:
            raise _truncated(self.name, 1, end - pos)
        return bool(buf[pos] & 1), pos + 1


class _FixedBytes(FieldType):
    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.fixed_size = size
        self.struct_code = f"{size}s"

    def check(self, value: Any) -> None:
        if not isinstance(value, bytes | bytearray | memoryview) or len(value) != self.fixed_size:
            raise EncodeError(f"{self.name} expects {self.fixed_size} bytes, got {value!r:.80}")

    def encode_into(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out += value

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
        size = self.fixed_size
        assert size is not None
        if pos + size > end:
            raise _truncated(self.name, size, end - pos)
        return buf[pos : pos + size], pos + size


class _VarBytes(FieldType):
    """Length-prefixed bytes: the prefix is `prefix_size` bytes LE, at most `max_len`."""

    def __init__(self, name: str, prefix_size: int, max_len: int) -> None:
        self.name = name
        self.prefix_size = prefix_size
        self.max_len = max_len

    def check(self, value: Any) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise EncodeError(f"{self.name} expects bytes, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise EncodeError(f"{self.name}: {len(value)} bytes exceeds maximum {self.max_len}")

    def encode_into(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out += len(value).to_bytes(self.prefix_size, "little")
        out += value

    def _read_len(self, buf: bytes, pos: int, end: int) -> tuple[int, int]:
        p = self.prefix_size
        if pos + p > end:
            raise _truncated(self.name + " length", p, end - pos)
        n = buf[pos] if p == 1 else int.from_bytes(buf[pos : pos + p], "little")
        pos += p
        if n > self.max_len:
            raise DecodeError(f"{self.name}: length {n} exceeds maximum {self.max_len}")
        if pos + n > end:
            raise _truncated(self.name, n, end - pos)
        return n, pos

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
        n, pos = self._read_len(buf, pos, end)
        return buf[pos : pos + n], pos + n


class _Str(_VarBytes):
    """STR0_255: UTF-8 text; arbitrary bytes round-trip through surrogateescape."""

    def check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise EncodeError(f"{self.name} expects str, got {type(value).__name__}")

    def encode_into(self, value: Any, out: bytearray) -> None:
        self.check(value)
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"{self.name}: not encodable: {exc}") from None
        if len(raw) > self.max_len:
            raise EncodeError(f"{self.name}: {len(raw)} bytes exceeds maximum {self.max_len}")
        out.append(len(raw))
        out += raw

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[str, int]:
        n, pos = self._read_len(buf, pos, end)
        return buf[pos : pos + n].decode("utf-8", "surrogateescape"), pos + n


class _RestBytes(FieldType):
    """BYTES: raw bytes whose length is implied by the end of the payload (last field only)."""

    name = "BYTES"

    def encode_into(self, value: Any, out: bytearray) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise EncodeError(f"BYTES expects bytes, got {type(value).__name__}")
        out += value

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
        return buf[pos:end], end


class _Seq(FieldType):
    """SEQ0_255[T] / SEQ0_64K[T]: an element count then the elements."""

    def __init__(self, base: str, prefix_size: int, max_len: int, item: FieldType) -> None:
        self.name = f"{base}[{item.name}]"
        self.prefix_size = prefix_size
        self.max_len = max_len
        self.item = item

    def encode_into(self, value: Any, out: bytearray) -> None:
        if not isinstance(value, list | tuple):
            raise EncodeError(f"{self.name} expects a tuple or list, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise EncodeError(f"{self.name}: {len(value)} items exceeds maximum {self.max_len}")
        out += len(value).to_bytes(self.prefix_size, "little")
        enc = self.item.encode_into
        for v in value:
            enc(v, out)

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[tuple[Any, ...], int]:
        p = self.prefix_size
        if pos + p > end:
            raise _truncated(self.name + " count", p, end - pos)
        n = int.from_bytes(buf[pos : pos + p], "little")
        pos += p
        size = self.item.fixed_size
        if size is not None:
            # Check the whole declared run fits before building anything.
            if pos + n * size > end:
                raise _truncated(self.name, n * size, end - pos)
            if isinstance(self.item, _FixedBytes):
                items = tuple(buf[i : i + size] for i in range(pos, pos + n * size, size))
                return items, pos + n * size
        dec = self.item.decode_from
        items_list = []
        for _ in range(n):
            v, pos = dec(buf, pos, end)
            items_list.append(v)
        return tuple(items_list), pos


class _Option(FieldType):
    """OPTION[T]: `00` for None or `01` followed by T (SRI encodes it as a 0..1 sequence)."""

    def __init__(self, item: FieldType) -> None:
        self.name = f"OPTION[{item.name}]"
        self.item = item

    def encode_into(self, value: Any, out: bytearray) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            self.item.encode_into(value, out)

    def decode_from(self, buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        if pos + 1 > end:
            raise _truncated(self.name, 1, end - pos)
        tag = buf[pos]
        if tag == 0:
            return None, pos + 1
        if tag != 1:
            raise DecodeError(f"{self.name}: invalid tag {tag}")
        return self.item.decode_from(buf, pos + 1, end)


U8 = _UInt("U8", 1, "B")
U16 = _UInt("U16", 2, "H")
U24 = _U24()
U32 = _UInt("U32", 4, "I")
U64 = _UInt("U64", 8, "Q")
F32 = _F32()
BOOL = _Bool()
U256 = _FixedBytes("U256", 32)
PUBKEY = _FixedBytes("PUBKEY", 32)
SIGNATURE = _FixedBytes("SIGNATURE", 64)
MAC = _FixedBytes("MAC", 16)
STR0_255 = _Str("STR0_255", 1, 255)
B0_32 = _VarBytes("B0_32", 1, 32)
B0_255 = _VarBytes("B0_255", 1, 255)
B0_64K = _VarBytes("B0_64K", 2, 0xFFFF)
B0_16M = _VarBytes("B0_16M", 3, 0xFFFFFF)
BYTES = _RestBytes()


def Seq0_255(item: FieldType) -> FieldType:
    """SEQ0_255[item]."""
    return _Seq("SEQ0_255", 1, 255, item)


def Seq0_64K(item: FieldType) -> FieldType:
    """SEQ0_64K[item]."""
    return _Seq("SEQ0_64K", 2, 0xFFFF, item)


def Option(item: FieldType) -> FieldType:
    """OPTION[item]."""
    return _Option(item)

"""CompactSize integers: the variable-length counts in Bitcoin serialization."""

from __future__ import annotations

import struct

from protocols.bitcoin.errors import DecodeError

MAX_SIZE = 0x02000000  # Bitcoin Core's MAX_SIZE: no count or length may exceed 32 MiB

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from


def read_compact_size(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a canonical CompactSize at ``pos``; returns (value, new position)."""
    try:
        first = buf[pos]
    except IndexError:
        raise DecodeError("truncated compact size") from None
    if first < 0xFD:
        return first, pos + 1
    try:
        if first == 0xFD:
            value, end, floor = _U16(buf, pos + 1)[0], pos + 3, 0xFD
        elif first == 0xFE:
            value, end, floor = _U32(buf, pos + 1)[0], pos + 5, 0x10000
        else:
            value, end, floor = _U64(buf, pos + 1)[0], pos + 9, 0x100000000
    except struct.error:
        raise DecodeError("truncated compact size") from None
    if value < floor:
        raise DecodeError("non-canonical compact size")
    if value > MAX_SIZE:
        raise DecodeError("compact size too large")
    return value, end


def compact_size(n: int) -> bytes:
    """Encode ``n`` as a CompactSize."""
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")

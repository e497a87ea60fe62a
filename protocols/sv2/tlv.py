"""TLV fields that negotiated extensions append after a message's own fields.

Layout (SRI `extensions_sv2`): extension_type U16 LE | field_type U8 | length U16 LE | value.
Trailing bytes are only legal once an extension has been negotiated on the connection; before
that they are a decode error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.sv2.errors import DecodeError, EncodeError

__all__ = ["TLV_HEADER_SIZE", "Tlv", "decode_tlvs", "encode_tlvs", "find_tlv"]

TLV_HEADER_SIZE = 5
_HEAD = struct.Struct("<HBH")


@dataclass(frozen=True, slots=True)
class Tlv:
    extension_type: int
    field_type: int
    value: bytes

    def encode(self) -> bytes:
        if not 0 <= self.extension_type <= 0xFFFF or not 0 <= self.field_type <= 0xFF:
            raise EncodeError(f"TLV type out of range: {self.extension_type}/{self.field_type}")
        if len(self.value) > 0xFFFF:
            raise EncodeError(f"TLV value of {len(self.value)} bytes exceeds 65535")
        return _HEAD.pack(self.extension_type, self.field_type, len(self.value)) + bytes(self.value)


def encode_tlvs(tlvs: tuple[Tlv, ...] | list[Tlv]) -> bytes:
    return b"".join(t.encode() for t in tlvs)


def decode_tlvs(buf: bytes, pos: int = 0, end: int | None = None) -> tuple[Tlv, ...]:
    """Parse TLVs filling buf[pos:end] exactly; anything malformed is a `DecodeError`."""
    end = len(buf) if end is None else end
    out = []
    while pos < end:
        if pos + TLV_HEADER_SIZE > end:
            raise DecodeError(f"TLV header truncated: {end - pos} bytes")
        ext, field, length = _HEAD.unpack_from(buf, pos)
        pos += TLV_HEADER_SIZE
        if pos + length > end:
            raise DecodeError(f"TLV value needs {length} bytes, only {end - pos} left")
        out.append(Tlv(ext, field, bytes(buf[pos : pos + length])))
        pos += length
    return tuple(out)


def find_tlv(tlvs: tuple[Tlv, ...], extension_type: int, field_type: int) -> Tlv | None:
    for tlv in tlvs:
        if tlv.extension_type == extension_type and tlv.field_type == field_type:
            return tlv
    return None

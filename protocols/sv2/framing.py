"""SV2 frame header and an incremental (unencrypted) frame decoder.

Header, 6 bytes: extension_type U16 LE | msg_type U8 | msg_length U24 LE (payload only).
Bit 0x8000 of extension_type is the channel_msg flag; senders set it as SRI does, receivers
ignore it when looking up the message (the spec moved it for some messages as late as 2026).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from protocols.sv2.errors import EncodeError, FramingError

__all__ = [
    "CHANNEL_MSG_BIT",
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "Frame",
    "FrameDecoder",
    "FrameHeader",
    "decode_header",
    "encode_frame",
    "encode_header",
]

HEADER_SIZE = 6
CHANNEL_MSG_BIT = 0x8000
#: Largest payload a U24 msg_length can announce.
MAX_PAYLOAD = (1 << 24) - 1

_HDR = struct.Struct("<HBH")  # extension_type, msg_type, low 16 bits of msg_length (+1 byte)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    extension_type: int  # as on the wire, channel bit included
    msg_type: int
    msg_length: int

    @property
    def channel_msg(self) -> bool:
        return bool(self.extension_type & CHANNEL_MSG_BIT)

    @property
    def extension(self) -> int:
        """extension_type without the channel_msg bit."""
        return self.extension_type & ~CHANNEL_MSG_BIT


@dataclass(frozen=True, slots=True)
class Frame:
    header: FrameHeader
    payload: bytes


def encode_header(extension_type: int, msg_type: int, msg_length: int, channel_msg: bool) -> bytes:
    if not 0 <= extension_type <= 0xFFFF:
        raise EncodeError(f"extension_type out of range: {extension_type}")
    if not 0 <= msg_type <= 0xFF:
        raise EncodeError(f"msg_type out of range: {msg_type}")
    if not 0 <= msg_length <= MAX_PAYLOAD:
        raise EncodeError(f"payload of {msg_length} bytes does not fit a U24 length")
    ext = extension_type | (CHANNEL_MSG_BIT if channel_msg else 0)
    return bytes(
        (
            ext & 0xFF,
            ext >> 8,
            msg_type,
            msg_length & 0xFF,
            (msg_length >> 8) & 0xFF,
            msg_length >> 16,
        )
    )


def decode_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader:
    if len(data) - offset < HEADER_SIZE:
        raise FramingError(f"header needs {HEADER_SIZE} bytes, got {len(data) - offset}")
    ext, msg_type, low = _HDR.unpack_from(data, offset)
    return FrameHeader(ext, msg_type, low | (data[offset + 5] << 16))


def encode_frame(
    extension_type: int, msg_type: int, payload: bytes, channel_msg: bool = False
) -> bytes:
    return encode_header(extension_type, msg_type, len(payload), channel_msg) + payload


class FrameDecoder:
    """Reassembles frames from arbitrary chunks.

    Memory stays bounded by what has arrived: a header announcing a huge payload allocates
    nothing; the decoder just waits, and a length above `max_payload` is rejected at once.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be within 0..{MAX_PAYLOAD}")
        self.max_payload = max_payload
        self._buf = bytearray()
        self._header: FrameHeader | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more bytes arrive."""
        if self._header is None:
            if len(self._buf) < HEADER_SIZE:
                return None
            header = decode_header(self._buf)
            if header.msg_length > self.max_payload:
                raise FramingError(
                    f"frame announces {header.msg_length} bytes, limit is {self.max_payload}"
                )
            del self._buf[:HEADER_SIZE]
            self._header = header
        header = self._header
        if len(self._buf) < header.msg_length:
            return None
        payload = bytes(self._buf[: header.msg_length])
        del self._buf[: header.msg_length]
        self._header = None
        return Frame(header, payload)

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.next_frame()) is not None:
            yield frame

    def iter_frames(self) -> Iterator[tuple[int, int, bytes]]:
        """Complete frames as (extension_type, msg_type, payload), like NoiseTransport's."""
        while (frame := self.next_frame()) is not None:
            yield frame.header.extension_type, frame.header.msg_type, frame.payload

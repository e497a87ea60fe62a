"""Message framing: 24-byte header (magic, command, length, checksum) then payload.

The decoder checks the header before buffering a payload, so a peer that
declares a huge length costs nothing; the checksum is verified before the
payload is handed on.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from protocols.bitcoin.p2p.errors import BadChecksum, BadMagic, MalformedMessage, OversizedMessage

HEADER_SIZE = 24
MAX_PROTOCOL_MESSAGE_LENGTH = 4 * 1000 * 1000  # Bitcoin Core: 4 MB
_HEADER = struct.Struct("<4s12sI4s")


def checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def encode_frame(magic: bytes, command: bytes, payload: bytes) -> bytes:
    if len(command) > 12:
        raise ValueError(f"command {command!r} longer than 12 bytes")
    return (
        _HEADER.pack(magic, command.ljust(12, b"\x00"), len(payload), checksum(payload)) + payload
    )


@dataclass(frozen=True, slots=True)
class Frame:
    command: bytes
    payload: bytes


class FrameDecoder:
    """Feed bytes with :meth:`feed`; take complete frames with :meth:`next_frame`."""

    def __init__(self, magic: bytes, max_payload: int = MAX_PROTOCOL_MESSAGE_LENGTH) -> None:
        self.magic = magic
        self.max_payload = max_payload
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_frame(self) -> Frame | None:
        buf = self._buf
        if len(buf) < HEADER_SIZE:
            if buf and not self.magic.startswith(bytes(buf[:4])):
                raise BadMagic(f"message start {bytes(buf[:4]).hex()} is not {self.magic.hex()}")
            return None
        magic, raw_command, length, check = _HEADER.unpack_from(buf)
        if magic != self.magic:
            raise BadMagic(f"message start {magic.hex()} is not {self.magic.hex()}")
        command = raw_command.rstrip(b"\x00")
        if b"\x00" in command or not all(0x20 < c < 0x7F for c in command):
            raise MalformedMessage(f"command {raw_command!r} is not NUL-padded printable ASCII")
        if length > self.max_payload:
            raise OversizedMessage(
                f"{command.decode()} declares {length} bytes, above {self.max_payload}"
            )
        end = HEADER_SIZE + length
        if len(buf) < end:
            return None
        payload = bytes(buf[HEADER_SIZE:end])
        del buf[:end]
        if checksum(payload) != check:
            raise BadChecksum(f"{command.decode()}: checksum mismatch")
        return Frame(command, payload)

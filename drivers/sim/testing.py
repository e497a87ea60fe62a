"""Host-side frame builders and reply parsing for exercising a simulated board.

Small and independent of the host driver in ``drivers.asic`` on purpose: the frame
layouts are built here, not by the driver's encoders, so the sim's own tests (and anyone
poking a board from a REPL) can talk to it without the driver, and a disagreement between
the two layouts shows up as a test failure. Only wire constants (header bytes, preambles),
CRCs and SHA-256 state work are shared. Layouts follow the BM13xx reference facts (docs in
``drivers.sim.chips``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from drivers.asic.bm13xx.crc import crc5, crc16
from drivers.asic.bm13xx.frames import REPLY_PREAMBLE, Header, reverse_words
from drivers.sha256_state import midstate_words


def command(header: int, data: bytes) -> bytes:
    """``55 AA HDR LEN DATA CRC5`` with LEN counting HDR..CRC."""
    body = bytes((header, len(data) + 3)) + data
    return b"\x55\xaa" + body + bytes((crc5(body),))


def read_register(reg: int, address: int | None = None) -> bytes:
    """Read ``reg`` from one chip, or from all chips when ``address`` is None."""
    if address is None:
        return command(Header.READ_ALL, bytes((0, reg)))
    return command(Header.READ_ONE, bytes((address, reg)))


def write_register(reg: int, value: int, address: int | None = None) -> bytes:
    """Write a 32-bit big-endian ``value`` to one chip or to all."""
    hdr = Header.WRITE_ALL if address is None else Header.WRITE_ONE
    return command(hdr, bytes((address or 0, reg)) + value.to_bytes(4, "big"))


def chain_inactive() -> bytes:
    return command(Header.CHAIN_INACTIVE, b"\x00\x00")


def set_address(address: int) -> bytes:
    return command(Header.SET_ADDRESS, bytes((address, 0)))


def job_frame(body: bytes) -> bytes:
    """``55 AA 21 LEN BODY CRC16`` (CRC16 high byte first)."""
    head = bytes((Header.JOB, len(body) + 4)) + body
    return b"\x55\xaa" + head + crc16(head).to_bytes(2, "big")


def bm136x_job(job_id: int, header: bytes, starting_nonce: int = 0) -> bytes:
    """BM1366/68/70 job from an 80-byte header (nonce bytes ignored)."""
    body = bytes((job_id, 1)) + starting_nonce.to_bytes(4, "little")
    body += header[72:76] + header[68:72]  # nbits, ntime as in the header (little-endian)
    body += reverse_words(header[36:68]) + reverse_words(header[4:36]) + header[0:4]
    return job_frame(body)


def rolled_versions(version: int, mask: int, count: int) -> list[int]:
    """``count`` versions stepping through ``mask`` bits (BIP320 style, for BM1397 midstates)."""
    out, rolled = [version], version
    for _ in range(count - 1):
        # Add one at the lowest mask bit, carrying only through mask bits.
        rolled = ((rolled | ~mask) + 1) & mask | (rolled & ~mask)
        out.append(rolled & 0xFFFFFFFF)
    return out


def bm1397_job(job_id: int, header: bytes, versions: list[int] | None = None) -> bytes:
    """BM1397 job: midstates of the header's first 64 bytes for each version given."""
    versions = versions or [int.from_bytes(header[0:4], "little")]
    body = bytes((job_id, len(versions))) + b"\x00\x00\x00\x00"
    body += header[72:76] + header[68:72] + header[64:68]
    mids = b""
    for version in versions:
        state = midstate_words(version.to_bytes(4, "little") + header[4:64])
        mids += struct.pack(">8I", *reversed(state))
    body += mids.ljust(128, b"\x00")
    return job_frame(body)


@dataclass(frozen=True, slots=True)
class Reply:
    """One chip -> host frame, split into fields."""

    raw: bytes
    value: int  # bytes 2-5 big-endian: register value or nonce_h
    byte6: int  # chip address (register) / midstate number (nonce)
    byte7: int  # register address / job id + core or midstate bits
    version_bits: int  # bytes 8-9 (BM136x/1370), 0 for 9-byte frames
    is_nonce: bool
    crc_ok: bool

    @property
    def nonce_bytes(self) -> bytes:
        """The four bytes that go into the header's nonce field."""
        return self.raw[2:6]

    @property
    def chip_address(self) -> int:
        return (self.value >> 17) & 0xFF

    @property
    def core_id(self) -> int:
        return (self.value >> 25) & 0x7F


def parse_replies(data: bytes, reply_len: int) -> list[Reply]:
    """Split a chip output stream into frames (resyncing on the ``AA 55`` preamble)."""
    replies, pos = [], 0
    while True:
        start = data.find(REPLY_PREAMBLE, pos)
        if start < 0 or start + reply_len > len(data):
            return replies
        raw = data[start : start + reply_len]
        replies.append(
            Reply(
                raw=raw,
                value=int.from_bytes(raw[2:6], "big"),
                byte6=raw[6],
                byte7=raw[7],
                version_bits=int.from_bytes(raw[8:10], "big") if reply_len == 11 else 0,
                is_nonce=bool(raw[-1] & 0x80),
                crc_ok=crc5(raw[2:]) == 0,
            )
        )
        pos = start + reply_len


def header_with_nonce(header: bytes, nonce_bytes: bytes, version: int | None = None) -> bytes:
    """``header`` with the reported nonce (and rolled version) filled in."""
    head = header[:76] if version is None else version.to_bytes(4, "little") + header[4:76]
    return head + nonce_bytes

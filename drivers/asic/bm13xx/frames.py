"""BM13xx UART frame codec, both directions, sans-IO.

Host -> chip frames start ``55 AA`` (commands end in CRC5, jobs in CRC16); chip -> host
frames start ``AA 55`` and have a fixed length per chip (11 bytes, 9 on the BM1397) whose
last byte carries the CRC5 in bits 0-4 and "this is a nonce" in bit 7.

- Host side: the command/job builders and :class:`ReplyDecoder`, which is fed arbitrary
  byte chunks and returns :class:`NonceReply` / :class:`RegisterReply` events. It
  resynchronises on the ``AA 55`` preamble and drops (and counts) corrupted, truncated and
  interleaved frames instead of raising: a noisy UART must never stop the miner.
- Chip side (used by the simulator): :class:`CommandDecoder` for host frames, and the
  reply builders :func:`nonce_reply` / :func:`register_reply`.

Strict single-frame parsers (:func:`parse_reply`, :func:`parse_command`) raise
:class:`~drivers.asic.errors.FramingError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from drivers.asic.errors import FramingError

from .chips import ChipSpec
from .crc import crc5, crc16
from .registers import value_bytes

CMD_PREAMBLE = b"\x55\xaa"
REPLY_PREAMBLE = b"\xaa\x55"

TYPE_JOB = 0x20
TYPE_CMD = 0x40
GROUP_ALL = 0x10
REPLY_NONCE_FLAG = 0x80


class Command(IntEnum):
    """Low bits of the header byte."""

    SET_ADDRESS = 0
    WRITE = 1
    READ = 2
    INACTIVE = 3


class Header(IntEnum):
    """The header bytes that actually occur on the wire."""

    SET_ADDRESS = TYPE_CMD | Command.SET_ADDRESS  # 0x40
    WRITE_ONE = TYPE_CMD | Command.WRITE  # 0x41
    READ_ONE = TYPE_CMD | Command.READ  # 0x42
    WRITE_ALL = TYPE_CMD | GROUP_ALL | Command.WRITE  # 0x51
    READ_ALL = TYPE_CMD | GROUP_ALL | Command.READ  # 0x52
    CHAIN_INACTIVE = TYPE_CMD | GROUP_ALL | Command.INACTIVE  # 0x53
    JOB = TYPE_JOB | Command.WRITE  # 0x21


HEADER_JOB_BODY_LEN = 82  # BM1366/68/70
MIDSTATE_JOB_BODY_LEN = 146  # BM1397, always four midstate slots
_JOB_PREFIX = struct.Struct("<BBIII")  # job_id, num_midstates, starting_nonce, nbits, ntime


# --------------------------------------------------------------------------------------
# host -> chip: builders
# --------------------------------------------------------------------------------------
def command(header: int, data: bytes) -> bytes:
    """A command frame: ``55 AA hdr len data crc5``; LEN counts hdr..crc."""
    if header & TYPE_JOB:
        raise FramingError("use job_frame() for job frames")
    if len(data) > 250:
        raise FramingError("command data too long")
    body = bytes((header, len(data) + 3)) + data
    return CMD_PREAMBLE + body + bytes((crc5(body),))


def set_address(address: int) -> bytes:
    return command(Header.SET_ADDRESS, bytes((address & 0xFF, 0)))


def chain_inactive() -> bytes:
    return command(Header.CHAIN_INACTIVE, b"\x00\x00")


def read_register(register: int, chip_address: int | None = None) -> bytes:
    """Read ``register`` from one chip, or from all chips when ``chip_address`` is None."""
    if chip_address is None:
        return command(Header.READ_ALL, bytes((0, register)))
    return command(Header.READ_ONE, bytes((chip_address, register)))


def write_register(register: int, value: int | bytes, chip_address: int | None = None) -> bytes:
    """Write a 4-byte ``value`` to one chip, or broadcast when ``chip_address`` is None."""
    if chip_address is None:
        return command(Header.WRITE_ALL, bytes((0, register)) + value_bytes(value))
    return command(Header.WRITE_ONE, bytes((chip_address, register)) + value_bytes(value))


def job_frame(body: bytes) -> bytes:
    """A job frame: ``55 AA 21 len body crc16`` (CRC high byte first)."""
    if len(body) > 250:
        raise FramingError("job body too long")
    head = bytes((Header.JOB, len(body) + 4)) + body
    return CMD_PREAMBLE + head + crc16(head).to_bytes(2, "big")


def reverse_words(data: bytes) -> bytes:
    """Reverse the order of the 32-bit words of a 32-byte hash (its own inverse)."""
    return b"".join(data[i : i + 4] for i in range(len(data) - 4, -1, -4))


@dataclass(frozen=True, slots=True)
class HeaderJob:
    """BM1366/68/70 job: the header fields; hashes in header (internal) byte order.

    On the wire both 32-byte hashes travel with their 32-bit word order reversed (bytes
    inside each word unchanged), every 4-byte integer little-endian.
    """

    job_id: int
    version: int
    prev_hash: bytes
    merkle_root: bytes
    ntime: int
    nbits: int
    starting_nonce: int = 0

    def body(self) -> bytes:
        return (
            _JOB_PREFIX.pack(self.job_id, 1, self.starting_nonce, self.nbits, self.ntime)
            + reverse_words(self.merkle_root)
            + reverse_words(self.prev_hash)
            + struct.pack("<I", self.version)
        )

    def frame(self) -> bytes:
        return job_frame(self.body())

    def header(self, nonce: int = 0, version: int | None = None) -> bytes:
        """The 80-byte block header this job describes."""
        return (
            struct.pack("<I", self.version if version is None else version)
            + self.prev_hash
            + self.merkle_root
            + struct.pack("<III", self.ntime, self.nbits, nonce)
        )

    @classmethod
    def from_body(cls, body: bytes) -> HeaderJob:
        if len(body) != HEADER_JOB_BODY_LEN:
            raise FramingError(f"header job body is {len(body)} bytes, want 82")
        job_id, _n, start, nbits, ntime = _JOB_PREFIX.unpack_from(body)
        merkle = reverse_words(body[14:46])
        prev = reverse_words(body[46:78])
        (version,) = struct.unpack_from("<I", body, 78)
        return cls(job_id, version, prev, merkle, ntime, nbits, start)


@dataclass(frozen=True, slots=True)
class MidstateJob:
    """BM1397 job: midstates (wire form, see ``midstate.midstate_wire``) + header tail.

    ``merkle_tail`` is the last 4 bytes of the merkle root in header order: with ntime and
    nbits it forms the 12 header bytes after the first 64.
    """

    job_id: int
    midstates: tuple[bytes, ...]
    merkle_tail: bytes
    ntime: int
    nbits: int
    starting_nonce: int = 0

    def body(self) -> bytes:
        if not 1 <= len(self.midstates) <= 4:
            raise FramingError("a BM1397 job carries 1 to 4 midstates")
        slots = b"".join(self.midstates) + b"\x00" * 32 * (4 - len(self.midstates))
        return (
            _JOB_PREFIX.pack(
                self.job_id, len(self.midstates), self.starting_nonce, self.nbits, self.ntime
            )
            + self.merkle_tail
            + slots
        )

    def frame(self) -> bytes:
        return job_frame(self.body())

    @classmethod
    def from_body(cls, body: bytes) -> MidstateJob:
        if len(body) != MIDSTATE_JOB_BODY_LEN:
            raise FramingError(f"midstate job body is {len(body)} bytes, want 146")
        job_id, count, start, nbits, ntime = _JOB_PREFIX.unpack_from(body)
        if not 1 <= count <= 4:
            raise FramingError(f"midstate count {count} outside 1..4")
        mids = tuple(body[18 + 32 * i : 50 + 32 * i] for i in range(count))
        return cls(job_id, mids, bytes(body[14:18]), ntime, nbits, start)


# --------------------------------------------------------------------------------------
# chip -> host: events, builders, decoder
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NonceReply:
    """A nonce found by a chip.

    ``nonce`` is the value to put in the header (its 4 wire bytes are the header's nonce
    bytes). ``sub`` is the small core (BM136x) or the midstate index (BM1397). ``core_id``
    and ``chip_address`` come from the nonce's top bits, where the chip encodes them.
    """

    nonce: int
    job_id: int
    sub: int
    version_bits: int  # rolled version bits, already shifted into place (<< 13)
    midstate_num: int
    core_id: int
    chip_address: int


@dataclass(frozen=True, slots=True)
class RegisterReply:
    value: int
    chip_address: int
    register: int


Reply = NonceReply | RegisterReply


def _crc5_tail_bits(crc: int, byte: int) -> int:
    # Fold the top three bits of the last byte (flag + 2 spare bits) into the CRC register.
    for i in (7, 6, 5):
        feedback = ((crc >> 4) & 1) ^ ((byte >> i) & 1)
        crc = (crc << 1) & 0x1F
        if feedback:
            crc ^= 0x05
    return crc


def _seal_reply(body: bytes, flag: int) -> bytes:
    crc = _crc5_tail_bits(crc5(body), flag)
    return REPLY_PREAMBLE + body + bytes((flag | crc,))


def reply_crc_ok(frame: bytes) -> bool:
    """A chip reply is valid when the CRC5 over everything after the preamble is zero."""
    return crc5(frame[2:]) == 0


def nonce_reply(
    spec: ChipSpec,
    nonce: int,
    job_id: int,
    sub: int = 0,
    version_bits: int = 0,
    midstate_num: int = 0,
) -> bytes:
    """Chip side: the frame a chip sends for ``nonce`` (``version_bits`` pre-shift << 13)."""
    body = struct.pack("<I", nonce) + bytes(
        (midstate_num & 0xFF, spec.encode_reply_id(job_id, sub))
    )
    if spec.reply_len == 11:
        body += ((version_bits >> 13) & 0xFFFF).to_bytes(2, "big")
    return _seal_reply(body, REPLY_NONCE_FLAG)


def register_reply(spec: ChipSpec, value: int, chip_address: int, register: int) -> bytes:
    """Chip side: the frame answering a register read."""
    body = value.to_bytes(4, "big") + bytes((chip_address & 0xFF, register & 0xFF))
    body += b"\x00" * (spec.reply_len - 3 - len(body))
    return _seal_reply(body, 0)


def _decode(spec: ChipSpec, frame: bytes) -> Reply:
    if frame[-1] & REPLY_NONCE_FLAG:
        nonce_be = int.from_bytes(frame[2:6], "big")
        job_id, sub = spec.decode_reply_id(frame[7])
        version_bits = int.from_bytes(frame[8:10], "big") << 13 if spec.reply_len == 11 else 0
        return NonceReply(
            nonce=int.from_bytes(frame[2:6], "little"),
            job_id=job_id,
            sub=sub,
            version_bits=version_bits,
            midstate_num=frame[6],
            core_id=(nonce_be >> 25) & 0x7F,
            chip_address=(nonce_be >> 17) & 0xFF,
        )
    return RegisterReply(int.from_bytes(frame[2:6], "big"), frame[6], frame[7])


def parse_reply(spec: ChipSpec, frame: bytes) -> Reply:
    """Parse exactly one chip reply; raise FramingError if it is not a valid one."""
    if len(frame) != spec.reply_len:
        raise FramingError(f"{spec.model} reply must be {spec.reply_len} bytes, got {len(frame)}")
    if frame[:2] != REPLY_PREAMBLE:
        raise FramingError("reply does not start with AA 55")
    if not reply_crc_ok(frame):
        raise FramingError("reply CRC5 mismatch")
    return _decode(spec, bytes(frame))


@dataclass(slots=True)
class DecoderStats:
    frames: int = 0
    crc_errors: int = 0
    truncated: int = 0
    garbage_bytes: int = 0

    @property
    def dropped(self) -> int:
        return self.crc_errors + self.truncated


class ReplyDecoder:
    """Stream decoder for chip replies: ``feed(chunk)`` -> list of replies.

    Never raises on bad input. A window that fails its CRC is dropped: if another
    preamble starts inside it, the frame was truncated and decoding resumes there;
    otherwise it was corrupted and decoding resumes at the window's last byte. Bytes
    outside any frame are counted as garbage. The buffer never holds more than one
    partial frame.
    """

    def __init__(self, spec: ChipSpec) -> None:
        self.spec = spec
        self.stats = DecoderStats()
        self._buf = bytearray()
        self._n = spec.reply_len

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Reply]:
        buf = self._buf
        buf += data
        n = self._n
        stats = self.stats
        out: list[Reply] = []
        pos = 0
        end = len(buf)
        while True:
            start = buf.find(REPLY_PREAMBLE, pos)
            if start < 0:
                keep = 1 if end > pos and buf[-1] == 0xAA else 0
                stats.garbage_bytes += end - pos - keep
                del buf[: end - keep]
                return out
            stats.garbage_bytes += start - pos
            if end - start < n:
                del buf[:start]
                return out
            frame = bytes(buf[start : start + n])
            if crc5(frame[2:]) == 0:
                stats.frames += 1
                out.append(_decode(self.spec, frame))
                pos = start + n
                continue
            inner = buf.find(REPLY_PREAMBLE, start + 2, start + n)
            if inner >= 0:
                stats.truncated += 1
                pos = inner
            else:
                stats.crc_errors += 1
                pos = start + n - 1


# --------------------------------------------------------------------------------------
# chip side: decoding host frames
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CommandFrame:
    """A host command as a chip sees it."""

    header: int
    data: bytes

    @property
    def command(self) -> Command:
        return Command(self.header & 0x0F)

    @property
    def broadcast(self) -> bool:
        return bool(self.header & GROUP_ALL)

    @property
    def chip_address(self) -> int:
        return self.data[0]

    @property
    def register(self) -> int:
        return self.data[1]

    @property
    def value(self) -> bytes:
        """The 4-byte value of a write (empty for other commands)."""
        return self.data[2:6]


@dataclass(frozen=True, slots=True)
class JobFrame:
    """A job as a chip sees it; decode ``body`` with HeaderJob/MidstateJob.from_body."""

    body: bytes

    @property
    def job_id(self) -> int:
        return self.body[0]


HostFrame = CommandFrame | JobFrame


def parse_command(frame: bytes) -> HostFrame:
    """Parse exactly one host frame; raise FramingError if it is not a valid one."""
    if len(frame) < 7 or frame[:2] != CMD_PREAMBLE:
        raise FramingError("host frame must start with 55 AA and be at least 7 bytes")
    if frame[3] + 2 != len(frame):
        raise FramingError("host frame LEN does not match its size")
    header = frame[2]
    if header & TYPE_JOB:
        if crc16(frame[2:-2]) != int.from_bytes(frame[-2:], "big"):
            raise FramingError("job CRC16 mismatch")
        return JobFrame(bytes(frame[4:-2]))
    if not header & TYPE_CMD or header & 0x0F > Command.INACTIVE:
        raise FramingError(f"unknown header byte {header:#04x}")
    if crc5(frame[2:-1]) != frame[-1]:
        raise FramingError("command CRC5 mismatch")
    return CommandFrame(header, bytes(frame[4:-1]))


@dataclass(slots=True)
class CommandDecoderStats:
    frames: int = 0
    crc_errors: int = 0
    garbage_bytes: int = 0


class CommandDecoder:
    """Chip-side stream decoder for host frames (``55 AA``), resynchronising like
    :class:`ReplyDecoder`. LEN must be 5 or 9 for commands and 6..150 for jobs."""

    def __init__(self) -> None:
        self.stats = CommandDecoderStats()
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[HostFrame]:
        buf = self._buf
        buf += data
        stats = self.stats
        out: list[HostFrame] = []
        pos = 0
        while True:
            start = buf.find(CMD_PREAMBLE, pos)
            if start < 0:
                keep = 1 if len(buf) > pos and buf[-1] == 0x55 else 0
                stats.garbage_bytes += len(buf) - pos - keep
                del buf[: len(buf) - keep]
                return out
            stats.garbage_bytes += start - pos
            if len(buf) - start < 4:
                del buf[:start]
                return out
            header, length = buf[start + 2], buf[start + 3]
            plausible = (
                (6 <= length <= 4 + MIDSTATE_JOB_BODY_LEN)
                if header & TYPE_JOB
                else (header & TYPE_CMD and length in (5, 9))
            )
            if not plausible:
                stats.crc_errors += 1
                pos = start + 2
                continue
            if len(buf) - start < length + 2:
                del buf[:start]
                return out
            try:
                frame = parse_command(bytes(buf[start : start + length + 2]))
            except FramingError:
                stats.crc_errors += 1
                pos = start + 2
                continue
            stats.frames += 1
            out.append(frame)
            pos = start + length + 2

"""FTDI USB-UART bridge protocol (FT232R, FT-X): vendor requests and IN framing.

Pure functions and values only: which control requests configure the bridge,
how a baud rate becomes the chip's divisor, and how the two modem-status bytes
that start every IN packet are removed. ``drivers.transport.usb`` sends these
over pyusb; ``drivers.sim.usb_backend`` decodes them on the device side, so
both ends share one definition of the encoding.

Facts from FTDI's application notes (AN232B-05 baud rates, AN232R-01 bit-bang)
and the GekkoScience usage recorded in ``shared/reference/bm13xx.md``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

VID_FTDI = 0x0403
PID_FT232 = 0x6001  # FT232R / FT232BM (the bridge QEMU's usb-serial emulates)
PID_FTX = 0x6015  # FT230X / FT231X (GekkoScience Compac F)

#: Every baud rate is derived from this clock (48 MHz / 16).
BAUD_BASE = 3_000_000
#: Full-speed bulk packet size; each IN packet starts with 2 status bytes.
PACKET_SIZE = 64
STATUS_LEN = 2

EP_IN = 0x81
EP_OUT = 0x02

REQTYPE_OUT = 0x40  # vendor, device, host-to-device
REQTYPE_IN = 0xC0  # vendor, device, device-to-host


class Request(enum.IntEnum):
    """FTDI vendor request numbers (bRequest)."""

    RESET = 0x00
    MODEM_CTRL = 0x01
    SET_FLOW_CTRL = 0x02
    SET_BAUD_RATE = 0x03
    SET_DATA = 0x04
    GET_MODEM_STATUS = 0x05
    SET_LATENCY_TIMER = 0x09
    GET_LATENCY_TIMER = 0x0A
    SET_BITMODE = 0x0B


class ResetValue(enum.IntEnum):
    """wValue of the RESET request."""

    SIO = 0
    PURGE_RX = 1
    PURGE_TX = 2


class BitMode(enum.IntEnum):
    """High byte of SET_BITMODE's wValue."""

    RESET = 0x00
    CBUS = 0x20


#: SET_DATA wValue for 8 data bits, no parity (bits 8-10 = 0), 1 stop bit (bits 11-12 = 0).
DATA_8N1 = 0x0008

# Modem status (first status byte, high nibble) and line status (second byte).
MODEM_CTS = 0x10
MODEM_DSR = 0x20
MODEM_RI = 0x40
MODEM_RLSD = 0x80
LINE_DR = 0x01
LINE_OE = 0x02
LINE_PE = 0x04
LINE_FE = 0x08
LINE_BI = 0x10
LINE_THRE = 0x20
LINE_TEMT = 0x40
LINE_FIFO_ERR = 0x80
LINE_ERRORS = LINE_OE | LINE_PE | LINE_FE | LINE_BI | LINE_FIFO_ERR
#: What an idle FT-X reports: modem nibble 0x01, transmitter empty.
IDLE_STATUS = bytes((0x01, LINE_THRE | LINE_TEMT))

# Sub-integer divisor codes: index = eighths of the divisor, value = 3-bit code on the wire.
_FRACTION_CODE = (0, 3, 2, 4, 1, 5, 6, 7)
_CODE_EIGHTHS = {code: eighths for eighths, code in enumerate(_FRACTION_CODE)}
_MAX_DIVISOR_EIGHTHS = (0x3FFF << 3) | 7


class FtdiError(ValueError):
    """A value cannot be expressed in the FTDI encoding."""


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """One vendor control transfer (no data stage unless ``data`` is set)."""

    bm_request_type: int
    b_request: int
    w_value: int
    w_index: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class BaudSetting:
    """The encoded divisor for a requested baud rate and the rate it really gives."""

    requested: int
    actual: int
    w_value: int
    w_index: int

    @property
    def error(self) -> float:
        """Relative error of the real rate against the requested one."""
        return (self.actual - self.requested) / self.requested


def encode_baud(baud: int) -> BaudSetting:
    """Encode ``baud`` as FT232R/FT-X divisor (integer part + 1/8 fraction code).

    Divisor = 3 MHz / baud rounded to the nearest eighth. The integer part goes
    in bits 0-13, the fraction code in bits 14-16 (bit 16 spills into wIndex).
    Divisors between 1 and 2 do not exist; 1 (3 Mbaud) and 1.5 (2 Mbaud) are
    sent as the special values 0 and 1.
    """
    if baud <= 0:
        raise FtdiError(f"baud must be positive, not {baud}")
    eighths = (BAUD_BASE * 8 * 2 + baud) // (2 * baud)  # round to nearest eighth
    if eighths < 8:
        raise FtdiError(f"{baud} baud is above the 3 Mbaud maximum")
    if eighths > _MAX_DIVISOR_EIGHTHS:
        raise FtdiError(f"{baud} baud is below the minimum of this bridge")
    if eighths < 16:
        # Divisors between 1 and 2 do not exist: only 1 (3 M), 1.5 (2 M) and 2 (1.5 M).
        eighths = min((8, 12, 16), key=lambda e: abs(BAUD_BASE * 8 / e - baud))
    if eighths == 8:
        encoded = 0
    elif eighths == 12:
        encoded = 1
    else:
        encoded = (eighths >> 3) | (_FRACTION_CODE[eighths & 7] << 14)
    actual = decode_baud(encoded & 0xFFFF, encoded >> 16)
    return BaudSetting(baud, actual, encoded & 0xFFFF, encoded >> 16)


def decode_baud(w_value: int, w_index: int) -> int:
    """The baud rate an FT232R/FT-X runs at after SET_BAUD_RATE(w_value, w_index)."""
    encoded = w_value | ((w_index & 0x01) << 16)
    if encoded == 0:
        return BAUD_BASE
    if encoded == 1:
        return 2_000_000
    integer = encoded & 0x3FFF
    eighths = (integer << 3) | _CODE_EIGHTHS[encoded >> 14]
    return (BAUD_BASE * 8 * 2 + eighths) // (2 * eighths)


def reset_request() -> ControlRequest:
    return ControlRequest(REQTYPE_OUT, Request.RESET, ResetValue.SIO, 0)


def purge_rx_request() -> ControlRequest:
    return ControlRequest(REQTYPE_OUT, Request.RESET, ResetValue.PURGE_RX, 0)


def purge_tx_request() -> ControlRequest:
    return ControlRequest(REQTYPE_OUT, Request.RESET, ResetValue.PURGE_TX, 0)


def data_8n1_request() -> ControlRequest:
    return ControlRequest(REQTYPE_OUT, Request.SET_DATA, DATA_8N1, 0)


def flow_none_request() -> ControlRequest:
    """No flow control: wValue 0, wIndex high byte (flow mode) 0."""
    return ControlRequest(REQTYPE_OUT, Request.SET_FLOW_CTRL, 0, 0)


def latency_request(ms: int) -> ControlRequest:
    """How long the bridge holds a partial IN packet before sending it (1-255 ms)."""
    if not 1 <= ms <= 255:
        raise FtdiError(f"latency timer must be 1..255 ms, not {ms}")
    return ControlRequest(REQTYPE_OUT, Request.SET_LATENCY_TIMER, ms, 0)


def baud_request(baud: int) -> tuple[ControlRequest, BaudSetting]:
    setting = encode_baud(baud)
    req = ControlRequest(REQTYPE_OUT, Request.SET_BAUD_RATE, setting.w_value, setting.w_index)
    return req, setting


def cbus_request(pins: int) -> ControlRequest:
    """CBUS bit-bang: ``pins`` high nibble = output enables, low nibble = levels."""
    if not 0 <= pins <= 0xFF:
        raise FtdiError(f"CBUS pin byte out of range: {pins}")
    return ControlRequest(REQTYPE_OUT, Request.SET_BITMODE, (BitMode.CBUS << 8) | pins, 0)


def init_requests(baud: int, latency_ms: int = 2) -> list[ControlRequest]:
    """The bring-up sequence: reset, 8N1, baud, no flow control, latency, purge RX/TX."""
    return [
        reset_request(),
        data_8n1_request(),
        baud_request(baud)[0],
        flow_none_request(),
        latency_request(latency_ms),
        purge_rx_request(),
        purge_tx_request(),
    ]


#: CB1 drives the chips' reset line on the Compac F: all four CBUS pins outputs.
CBUS_RESET_HIGH = 0xF2
CBUS_RESET_LOW = 0xF0


@dataclass(slots=True)
class InPacketStats:
    """What the status bytes said, for diagnostics (line errors mean lost bytes)."""

    packets: int = 0
    line_errors: int = 0
    last_modem_status: int = 0
    last_line_status: int = 0


def strip_modem_status(
    transfer: bytes | bytearray | memoryview,
    packet_size: int = PACKET_SIZE,
    stats: InPacketStats | None = None,
) -> bytes:
    """Remove the 2 status bytes that start each ``packet_size`` chunk of one IN transfer.

    A bulk IN transfer is a run of full packets, possibly ended by one short
    packet, so status bytes sit at every multiple of ``packet_size``. A chunk
    shorter than 2 bytes is malformed and ignored.
    """
    view = memoryview(transfer)
    out = bytearray()
    for start in range(0, len(view), packet_size):
        chunk = view[start : start + packet_size]
        if len(chunk) < STATUS_LEN:
            break
        if stats is not None:
            stats.packets += 1
            stats.last_modem_status = chunk[0]
            stats.last_line_status = chunk[1]
            if chunk[1] & LINE_ERRORS:
                stats.line_errors += 1
        out += chunk[STATUS_LEN:]
    return bytes(out)


def frame_in_packets(
    payload: bytes, status: bytes = IDLE_STATUS, packet_size: int = PACKET_SIZE
) -> bytes:
    """Device side of :func:`strip_modem_status`: prefix every packet with status bytes.

    An empty payload still yields one status-only packet, as a real bridge
    sends when its latency timer expires with nothing to say.
    """
    room = packet_size - STATUS_LEN
    if not payload:
        return bytes(status)
    out = bytearray()
    for start in range(0, len(payload), room):
        out += status
        out += payload[start : start + room]
    return bytes(out)

"""Silicon Labs CP210x USB-UART bridge protocol: vendor requests (AN571).

Pure values like ``drivers.transport.ftdi``; ``drivers.transport.usb`` sends
them. Unlike FTDI, CP210x IN packets carry no status bytes and the baud rate
is sent as a plain 32-bit little-endian integer.

GPIO (used to pulse the chips' reset line on some sticks) goes through the
vendor-specific request 0xFF with the WRITE_LATCH value: CP2102N/CP2103/CP2104
take ``(latch << 8) | mask`` in wIndex, CP2105 takes the two bytes ``mask,
latch`` in the data stage.
"""

from __future__ import annotations

import enum
import struct

from drivers.transport.ftdi import ControlRequest

VID_SILABS = 0x10C4
PID_CP210X = 0xEA60  # CP2102 / CP2102N / CP2104 (older Compac)
PID_CP2105 = 0xEA70  # dual UART (Compac A1/A2)

EP_IN = 0x81
EP_OUT = 0x01
PACKET_SIZE = 64

REQTYPE_HOST_TO_INTERFACE = 0x41
REQTYPE_INTERFACE_TO_HOST = 0xC1
REQTYPE_HOST_TO_DEVICE = 0x40
REQTYPE_DEVICE_TO_HOST = 0xC0


class Request(enum.IntEnum):
    """CP210x request numbers (bRequest)."""

    IFC_ENABLE = 0x00
    SET_BAUDDIV = 0x01
    GET_BAUDDIV = 0x02
    SET_LINE_CTL = 0x03
    GET_LINE_CTL = 0x04
    SET_BREAK = 0x05
    SET_MHS = 0x07
    GET_MDMSTS = 0x08
    PURGE = 0x12
    SET_FLOW = 0x13
    GET_BAUDRATE = 0x1D
    SET_BAUDRATE = 0x1E
    VENDOR_SPECIFIC = 0xFF


UART_ENABLE = 0x0001
UART_DISABLE = 0x0000
#: SET_LINE_CTL: word length 8 in bits 8-15, parity none (bits 4-7 = 0), 1 stop bit (bits 0-3 = 0).
LINE_8N1 = 0x0800
#: PURGE: clear both transmit and receive queues.
PURGE_ALL = 0x000F
WRITE_LATCH = 0x37E1
READ_LATCH = 0x00C2

MAX_BAUD = 3_000_000


class Cp210xError(ValueError):
    """A value the CP210x cannot take."""


def enable_request(interface: int = 0) -> ControlRequest:
    return ControlRequest(REQTYPE_HOST_TO_INTERFACE, Request.IFC_ENABLE, UART_ENABLE, interface)


def disable_request(interface: int = 0) -> ControlRequest:
    return ControlRequest(REQTYPE_HOST_TO_INTERFACE, Request.IFC_ENABLE, UART_DISABLE, interface)


def line_8n1_request(interface: int = 0) -> ControlRequest:
    return ControlRequest(REQTYPE_HOST_TO_INTERFACE, Request.SET_LINE_CTL, LINE_8N1, interface)


def baud_request(baud: int, interface: int = 0) -> ControlRequest:
    if not 300 <= baud <= MAX_BAUD:
        raise Cp210xError(f"baud {baud} outside 300..{MAX_BAUD}")
    return ControlRequest(
        REQTYPE_HOST_TO_INTERFACE, Request.SET_BAUDRATE, 0, interface, struct.pack("<I", baud)
    )


def purge_request(interface: int = 0) -> ControlRequest:
    return ControlRequest(REQTYPE_HOST_TO_INTERFACE, Request.PURGE, PURGE_ALL, interface)


def gpio_request(mask: int, latch: int, dual_port: bool, interface: int = 0) -> ControlRequest:
    """Drive the GPIO pins in ``mask`` to the levels in ``latch``."""
    if not (0 <= mask <= 0xFF and 0 <= latch <= 0xFF):
        raise Cp210xError("GPIO mask and latch are 8-bit")
    if dual_port:
        return ControlRequest(
            REQTYPE_HOST_TO_INTERFACE,
            Request.VENDOR_SPECIFIC,
            WRITE_LATCH,
            interface,
            bytes((mask, latch)),
        )
    return ControlRequest(
        REQTYPE_HOST_TO_DEVICE, Request.VENDOR_SPECIFIC, WRITE_LATCH, (latch << 8) | mask
    )


def init_requests(baud: int, interface: int = 0) -> list[ControlRequest]:
    """Bring-up: enable the UART, 8N1, baud, purge both FIFOs."""
    return [
        enable_request(interface),
        line_8n1_request(interface),
        baud_request(baud, interface),
        purge_request(interface),
    ]

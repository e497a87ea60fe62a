"""One call from a board definition to an open :class:`~drivers.transport.base.Transport`.

USB boards go through pyusb (:class:`~drivers.transport.usb.UsbTransport`: CBUS reset,
latency timer) unless a tty is named, in which case the kernel driver's ``/dev/ttyUSB*``
is used with the CBUS reset line through ``ftdi_sio``'s gpiochip when it has one.
Serial boards need the port their chain is wired to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from drivers.boards.model import BoardDef, TransportKind
from drivers.transport.base import Transport, TransportError
from drivers.transport.ftdi_gpio import CbusResetLine
from drivers.transport.serial import SerialTransport
from drivers.transport.usb import UsbTransport

log = logging.getLogger(__name__)


def open_transport(
    board: BoardDef,
    port: str | None = None,
    *,
    usb_backend: Any = None,
    reset_hook: Callable[[], None] | None = None,
    baud: int = 115_200,
) -> Transport:
    """Open the chain of ``board`` (on ``port`` for serial boards or the tty path)."""
    if board.transport is TransportKind.USB and port is None:
        return UsbTransport.for_board(board, backend=usb_backend, baud=baud)
    if port is None:
        raise TransportError(
            f"board {board.name} is wired to a serial port: name it (see `blvm hw scan`)"
        )
    if board.transport is TransportKind.USB and reset_hook is None:
        try:
            line = CbusResetLine.for_tty(
                port, low_s=board.reset_low_ms / 1000, high_s=board.reset_high_ms / 1000
            )
            reset_hook = line.pulse
        except TransportError as exc:
            log.warning("%s: chips cannot be reset on the tty path: %s", port, exc)
    return SerialTransport(port, baud, reset_hook=reset_hook)

"""Chip reset through an FTDI's CBUS pins when the kernel's ``ftdi_sio`` owns the bridge.

On the tty path (``/dev/ttyUSB*`` + ``SerialTransport``) pyusb cannot send the CBUS
bit-bang request, but ``ftdi_sio`` exposes the CBUS pins configured as GPIO in the
bridge's EEPROM as a gpiochip under the USB interface. This module finds that chip
for a tty and pulses one line through the Linux GPIO character device (uAPI v2), so
``SerialTransport(port, reset_hook=CbusResetLine.for_tty(port).pulse)`` resets the
chips of a Compac F-class stick the same way the USB transport does.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from drivers.transport.base import TransportError

log = logging.getLogger(__name__)

GPIO_V2_LINES_MAX = 64
GPIO_MAX_NAME_SIZE = 32
GPIO_V2_LINE_NUM_ATTRS_MAX = 10
GPIO_V2_LINE_FLAG_OUTPUT = 1 << 3
GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES = 2
#: CB1 drives the chips' reset line on the Compac F (the USB path's mask 0xF2/0xF0).
CBUS_RESET_LINE = 1


class _LineAttribute(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("padding", ctypes.c_uint32), ("value", ctypes.c_uint64)]


class _LineConfigAttribute(ctypes.Structure):
    _fields_ = [("attr", _LineAttribute), ("mask", ctypes.c_uint64)]


class _LineConfig(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("num_attrs", ctypes.c_uint32),
        ("padding", ctypes.c_uint32 * 5),
        ("attrs", _LineConfigAttribute * GPIO_V2_LINE_NUM_ATTRS_MAX),
    ]


class _LineRequest(ctypes.Structure):
    _fields_ = [
        ("offsets", ctypes.c_uint32 * GPIO_V2_LINES_MAX),
        ("consumer", ctypes.c_char * GPIO_MAX_NAME_SIZE),
        ("config", _LineConfig),
        ("num_lines", ctypes.c_uint32),
        ("event_buffer_size", ctypes.c_uint32),
        ("padding", ctypes.c_uint32 * 5),
        ("fd", ctypes.c_int32),
    ]


class _LineValues(ctypes.Structure):
    _fields_ = [("bits", ctypes.c_uint64), ("mask", ctypes.c_uint64)]


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (0xB4 << 8) | nr


GPIO_V2_GET_LINE_IOCTL = _iowr(0x07, ctypes.sizeof(_LineRequest))
GPIO_V2_LINE_SET_VALUES_IOCTL = _iowr(0x0F, ctypes.sizeof(_LineValues))


def gpiochip_for_tty(tty: str, sysfs: Path = Path("/sys")) -> Path | None:
    """The ``/dev/gpiochipN`` that ``ftdi_sio`` registered for the bridge behind ``tty``."""
    name = Path(tty).name
    device = sysfs / "class" / "tty" / name / "device"
    try:
        port_dir = device.resolve(strict=True)
    except OSError:
        return None
    # ttyUSBn's device is the usb-serial port; the gpiochip hangs off its USB interface.
    for parent in (port_dir, port_dir.parent):
        chips = sorted(parent.glob("gpiochip*"))
        if chips:
            return Path("/dev") / chips[0].name
    return None


class CbusResetLine:
    """One CBUS pin of an ``ftdi_sio`` gpiochip, held as an output, pulsed low for reset."""

    def __init__(
        self,
        chip: Path | str,
        line: int = CBUS_RESET_LINE,
        *,
        low_s: float = 1.0,
        high_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chip = str(chip)
        self.line = line
        self.low_s = low_s
        self.high_s = high_s
        self._sleep = sleep
        self._fd: int | None = None

    @classmethod
    def for_tty(cls, tty: str, **kwargs) -> CbusResetLine:
        chip = gpiochip_for_tty(tty)
        if chip is None:
            raise TransportError(
                f"no ftdi_sio gpiochip for {tty}: the CBUS pins are not configured as GPIO in "
                "the bridge EEPROM, or use the USB transport (pyusb) instead"
            )
        return cls(chip, **kwargs)

    def _request(self) -> int:
        if self._fd is not None:
            return self._fd
        req = _LineRequest()
        req.offsets[0] = self.line
        req.consumer = b"blvm-asic-reset"
        req.num_lines = 1
        req.config.flags = GPIO_V2_LINE_FLAG_OUTPUT
        req.config.num_attrs = 1
        req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES
        req.config.attrs[0].attr.value = 1  # start released (high)
        req.config.attrs[0].mask = 1
        try:
            chip_fd = os.open(self.chip, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise TransportError(f"cannot open {self.chip}: {exc.strerror}") from exc
        try:
            fcntl.ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, req)
        except OSError as exc:
            raise TransportError(
                f"cannot claim line {self.line} of {self.chip}: {exc.strerror}"
            ) from exc
        finally:
            os.close(chip_fd)
        self._fd = int(req.fd)
        return self._fd

    def set(self, high: bool) -> None:
        values = _LineValues(1 if high else 0, 1)
        try:
            fcntl.ioctl(self._request(), GPIO_V2_LINE_SET_VALUES_IOCTL, values)
        except OSError as exc:
            raise TransportError(f"cannot drive {self.chip} line {self.line}: {exc}") from exc

    def pulse(self) -> None:
        """Reset: low for ``low_s``, then high and wait ``high_s`` for the chips to boot."""
        self.set(False)
        self._sleep(self.low_s)
        self.set(True)
        self._sleep(self.high_s)
        log.debug("pulsed CBUS%d on %s", self.line, self.chip)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

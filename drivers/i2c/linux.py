"""Linux ``/dev/i2c-N`` access through the i2c-dev ioctls (no external library).

Each transaction is one ``I2C_SMBUS`` ioctl after ``I2C_SLAVE`` selects the
address, exactly what smbus2/i2c-tools do; the kernel turns it into the wire
transfer. Errors from the kernel (no ACK = ENXIO/EREMOTEIO, timeout, bus gone)
become :class:`drivers.i2c.bus.I2CError` so callers see one failure type.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import threading

from drivers.i2c.bus import I2CError, check_byte, check_word

I2C_SLAVE = 0x0703
I2C_SMBUS = 0x0720
I2C_SMBUS_READ = 1
I2C_SMBUS_WRITE = 0
I2C_SMBUS_BYTE = 1
I2C_SMBUS_BYTE_DATA = 2
I2C_SMBUS_WORD_DATA = 3
I2C_SMBUS_I2C_BLOCK_DATA = 8
I2C_SMBUS_BLOCK_MAX = 32


class _SmbusData(ctypes.Union):
    _fields_ = [
        ("byte", ctypes.c_uint8),
        ("word", ctypes.c_uint16),
        ("block", ctypes.c_uint8 * (I2C_SMBUS_BLOCK_MAX + 2)),
    ]


class _SmbusIoctlData(ctypes.Structure):
    _fields_ = [
        ("read_write", ctypes.c_uint8),
        ("command", ctypes.c_uint8),
        ("size", ctypes.c_uint32),
        ("data", ctypes.POINTER(_SmbusData)),
    ]


class LinuxI2CBus:
    """An :class:`drivers.i2c.bus.SMBus` on a Linux i2c adapter (``/dev/i2c-<n>``)."""

    def __init__(self, bus: int | str) -> None:
        self.path = bus if isinstance(bus, str) else f"/dev/i2c-{bus}"
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR)
        except OSError as exc:
            raise I2CError(
                f"cannot open {self.path}: {exc.strerror}; is i2c-dev loaded (modprobe i2c-dev) "
                "and do you have permission?"
            ) from exc
        self._addr: int | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> LinuxI2CBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- SMBus --------------------------------------------------------------------------------

    def write_byte(self, addr: int, value: int) -> None:
        """SMBus send-byte: the command byte alone (PMBus CLEAR_FAULTS)."""
        self._transfer(addr, check_byte(value), I2C_SMBUS_WRITE, I2C_SMBUS_BYTE, None)

    def read_byte_data(self, addr: int, reg: int) -> int:
        data = _SmbusData()
        self._transfer(addr, reg, I2C_SMBUS_READ, I2C_SMBUS_BYTE_DATA, data)
        return int(data.byte)

    def write_byte_data(self, addr: int, reg: int, value: int) -> None:
        data = _SmbusData()
        data.byte = check_byte(value)
        self._transfer(addr, reg, I2C_SMBUS_WRITE, I2C_SMBUS_BYTE_DATA, data)

    def read_word_data(self, addr: int, reg: int) -> int:
        data = _SmbusData()
        self._transfer(addr, reg, I2C_SMBUS_READ, I2C_SMBUS_WORD_DATA, data)
        return int(data.word)

    def write_word_data(self, addr: int, reg: int, value: int) -> None:
        data = _SmbusData()
        data.word = check_word(value)
        self._transfer(addr, reg, I2C_SMBUS_WRITE, I2C_SMBUS_WORD_DATA, data)

    def read_i2c_block_data(self, addr: int, reg: int, length: int) -> list[int]:
        if not 1 <= length <= I2C_SMBUS_BLOCK_MAX:
            raise ValueError(f"block length must be 1..{I2C_SMBUS_BLOCK_MAX}")
        data = _SmbusData()
        data.block[0] = length
        self._transfer(addr, reg, I2C_SMBUS_READ, I2C_SMBUS_I2C_BLOCK_DATA, data)
        return [int(b) for b in data.block[1 : length + 1]]

    def write_i2c_block_data(self, addr: int, reg: int, data: list[int]) -> None:
        if not 1 <= len(data) <= I2C_SMBUS_BLOCK_MAX:
            raise ValueError(f"block length must be 1..{I2C_SMBUS_BLOCK_MAX}")
        buf = _SmbusData()
        buf.block[0] = len(data)
        for i, value in enumerate(data, start=1):
            buf.block[i] = check_byte(value)
        self._transfer(addr, reg, I2C_SMBUS_WRITE, I2C_SMBUS_I2C_BLOCK_DATA, buf)

    # -- ioctl plumbing -------------------------------------------------------------------------

    def _transfer(self, addr: int, reg: int, rw: int, size: int, data: _SmbusData | None) -> None:
        if not 0x03 <= addr <= 0x77:
            raise ValueError(f"7-bit I2C address out of range: 0x{addr:02X}")
        check_byte(reg)
        with self._lock:
            if self._fd is None:
                raise I2CError(f"{self.path} is closed", addr, reg)
            try:
                if self._addr != addr:
                    fcntl.ioctl(self._fd, I2C_SLAVE, addr)
                    self._addr = addr
                pointer = ctypes.pointer(data) if data is not None else None
                msg = _SmbusIoctlData(rw, reg, size, pointer)
                fcntl.ioctl(self._fd, I2C_SMBUS, msg)
            except OSError as exc:
                raise I2CError(_describe(exc, self.path), addr, reg) from exc


def _describe(exc: OSError, path: str) -> str:
    if exc.errno == errno.EBUSY:
        return f"{path}: address claimed by a kernel driver (unbind it first)"
    if exc.errno in (errno.ENXIO, errno.EREMOTEIO, errno.EIO):
        return f"{path}: no acknowledge from device ({exc.strerror})"
    return f"{path}: {exc.strerror or exc}"

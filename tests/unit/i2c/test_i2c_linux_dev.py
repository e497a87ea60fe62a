"""Linux i2c-dev access: ioctl structure layout and error reporting (no adapter here)."""

from __future__ import annotations

import ctypes

import pytest

from drivers.i2c import linux
from drivers.i2c.bus import I2CError, SMBus


def test_i2c_linux_ioctl_struct_matches_the_kernel_abi() -> None:
    # struct i2c_smbus_ioctl_data { __u8 read_write; __u8 command; __u32 size; void *data; }
    s = linux._SmbusIoctlData
    assert s.read_write.offset == 0
    assert s.command.offset == 1
    assert s.size.offset == 4
    assert s.data.offset == 8  # 4-byte size, then the pointer (8-aligned on 64-bit)
    # union i2c_smbus_data: byte, word, block[I2C_SMBUS_BLOCK_MAX + 2]
    assert ctypes.sizeof(linux._SmbusData) == 34


def test_i2c_linux_missing_adapter_says_what_to_do() -> None:
    with pytest.raises(I2CError, match="modprobe i2c-dev"):
        linux.LinuxI2CBus(250)


def test_i2c_linux_non_i2c_device_fails_as_i2c_error() -> None:
    bus = linux.LinuxI2CBus("/dev/null")
    assert isinstance(bus, SMBus)
    with pytest.raises(I2CError, match="0x4C"):
        bus.read_byte_data(0x4C, 0x01)
    with pytest.raises(I2CError):
        bus.write_byte(0x24, 0x03)
    with pytest.raises(ValueError):
        bus.write_byte_data(0x4C, 0x4C, 300)
    with pytest.raises(ValueError):
        bus.read_byte_data(0x80, 0x00)
    bus.close()
    with pytest.raises(I2CError, match="closed"):
        bus.read_word_data(0x24, 0x88)

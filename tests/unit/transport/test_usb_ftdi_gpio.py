"""ftdi_sio CBUS GPIO reset: uAPI v2 structure layout and gpiochip lookup in sysfs."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from drivers.transport import ftdi_gpio
from drivers.transport.base import TransportError


def test_usb_gpio_uapi_v2_layout() -> None:
    # Sizes from <linux/gpio.h>: the request is 592 bytes, its config 272, values 16.
    assert ctypes.sizeof(ftdi_gpio._LineConfig) == 272
    assert ctypes.sizeof(ftdi_gpio._LineRequest) == 592
    assert ctypes.sizeof(ftdi_gpio._LineValues) == 16
    assert ftdi_gpio._LineRequest.fd.offset == 588
    assert ftdi_gpio.GPIO_V2_GET_LINE_IOCTL == 0xC250B407
    assert ftdi_gpio.GPIO_V2_LINE_SET_VALUES_IOCTL == 0xC010B40F


def _fake_sysfs(root: Path, with_chip: bool) -> None:
    iface = root / "devices" / "pci0000:00" / "usb1" / "1-1" / "1-1:1.0"
    port = iface / "ttyUSB0"
    port.mkdir(parents=True)
    if with_chip:
        (iface / "gpiochip3").mkdir()
    tty = root / "class" / "tty" / "ttyUSB0"
    tty.mkdir(parents=True)
    (tty / "device").symlink_to(port)


def test_usb_gpio_finds_the_ftdi_gpiochip(tmp_path: Path) -> None:
    _fake_sysfs(tmp_path, with_chip=True)
    assert ftdi_gpio.gpiochip_for_tty("/dev/ttyUSB0", tmp_path) == Path("/dev/gpiochip3")
    assert ftdi_gpio.gpiochip_for_tty("/dev/ttyUSB9", tmp_path) is None


def test_usb_gpio_without_chip_explains(tmp_path: Path) -> None:
    _fake_sysfs(tmp_path, with_chip=False)
    assert ftdi_gpio.gpiochip_for_tty("/dev/ttyUSB0", tmp_path) is None
    with pytest.raises(TransportError, match="EEPROM"):
        ftdi_gpio.CbusResetLine.for_tty("/dev/ttyUSB42")


def test_usb_gpio_missing_chip_device_is_transport_error() -> None:
    line = ftdi_gpio.CbusResetLine("/dev/gpiochip-does-not-exist", sleep=lambda s: None)
    with pytest.raises(TransportError, match="cannot open"):
        line.pulse()

"""open_transport: board definition -> USB (pyusb) or serial transport."""

from __future__ import annotations

import os
import select

import pytest

from drivers.boards import get_board
from drivers.sim.chips import SimChain
from drivers.sim.usb_backend import SimUsbBackend
from drivers.transport.base import Transport, TransportError
from drivers.transport.factory import open_transport
from drivers.transport.serial import SerialTransport
from drivers.transport.usb import UsbTransport


def test_usb_factory_opens_the_stick_through_pyusb() -> None:
    backend = SimUsbBackend(lambda: SimChain("BM1397", 1, hashrate_hps=0))
    t = open_transport(get_board("compac-f"), usb_backend=backend)
    try:
        assert isinstance(t, UsbTransport) and isinstance(t, Transport)
        assert t.bridge.reset_low_s == 1.0 and t.bridge.reset_high_s == 0.2
    finally:
        t.close()


def test_usb_factory_serial_board_on_a_pty() -> None:
    master, slave = os.openpty()
    try:
        t = open_transport(get_board("bitaxe-gamma"), os.ttyname(slave))
        try:
            assert isinstance(t, SerialTransport)
            t.write(b"\x55\xaa\x52\x05\x00\x00\x0a")
            assert select.select([master], [], [], 2.0)[0]
            assert os.read(master, 16) == b"\x55\xaa\x52\x05\x00\x00\x0a"
        finally:
            t.close()
    finally:
        os.close(master)
        os.close(slave)


def test_usb_factory_serial_board_needs_a_port() -> None:
    with pytest.raises(TransportError, match="hw scan"):
        open_transport(get_board("bitaxe-ultra"))


def test_usb_factory_stick_on_tty_without_gpiochip_still_opens() -> None:
    master, slave = os.openpty()
    try:
        t = open_transport(get_board("compac-f"), os.ttyname(slave))
        assert isinstance(t, SerialTransport)
        t.reset_chips()  # no reset line found: a logged no-op
        t.close()
    finally:
        os.close(master)
        os.close(slave)

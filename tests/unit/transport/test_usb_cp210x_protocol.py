"""CP210x bridge requests (AN571 layouts)."""

from __future__ import annotations

import pytest

from drivers.transport import cp210x
from drivers.transport.ftdi import ControlRequest


def test_cp210x_init_sequence() -> None:
    reqs = cp210x.init_requests(115_200)
    assert reqs == [
        ControlRequest(0x41, 0x00, 0x0001, 0),  # IFC_ENABLE
        ControlRequest(0x41, 0x03, 0x0800, 0),  # SET_LINE_CTL 8N1
        ControlRequest(0x41, 0x1E, 0, 0, bytes.fromhex("00c20100")),  # 115200 LE
        ControlRequest(0x41, 0x12, 0x000F, 0),  # PURGE both queues
    ]


def test_cp210x_baud_is_little_endian_u32() -> None:
    assert cp210x.baud_request(1_000_000).data == (1_000_000).to_bytes(4, "little")
    with pytest.raises(cp210x.Cp210xError):
        cp210x.baud_request(4_000_000)


def test_cp210x_gpio_request_single_and_dual_port() -> None:
    single = cp210x.gpio_request(mask=0x01, latch=0x00, dual_port=False)
    assert single == ControlRequest(0x40, 0xFF, 0x37E1, 0x0001)
    high = cp210x.gpio_request(mask=0x01, latch=0x01, dual_port=False)
    assert high.w_index == 0x0101
    dual = cp210x.gpio_request(mask=0x02, latch=0x02, dual_port=True, interface=1)
    assert dual == ControlRequest(0x41, 0xFF, 0x37E1, 1, b"\x02\x02")

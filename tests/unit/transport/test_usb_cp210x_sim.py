"""UsbTransport with a CP210x bridge over the simulated CP210x pyusb backend."""

from __future__ import annotations

import pytest
import usb.core

from drivers.asic.bm13xx import frames
from drivers.sim.chips import SimChain
from drivers.sim.usb_backend import SimCp210xBackend
from drivers.transport.usb import Cp210xBridge, UsbTransport

CHIP_ID_READ = bytes.fromhex("55aa520500000a")


def _read(t: UsbTransport, n: int) -> bytes:
    out = b""
    for _ in range(50):
        if len(out) >= n:
            break
        out += t.read(0.05)
    return out


def test_usb_cp210x_init_sequence_and_enumeration() -> None:
    backend = SimCp210xBackend(lambda: SimChain("BM1370", 2, hashrate_hps=0))
    t = UsbTransport.open(0x10C4, 0xEA60, backend=backend)
    seq = [(r.bm_request_type, r.b_request, r.w_value, r.data) for r in backend.control_log]
    assert seq == [
        (0x41, 0x00, 1, b""),  # IFC_ENABLE
        (0x41, 0x03, 0x0800, b""),  # 8N1
        (0x41, 0x1E, 0, (115_200).to_bytes(4, "little")),  # SET_BAUDRATE
        (0x41, 0x12, 0x000F, b""),  # PURGE
    ]
    assert backend.host_baud == 115_200 and backend.enabled
    t.write(CHIP_ID_READ)
    data = _read(t, 22)
    assert data[:4] == b"\xaa\x55\x13\x70" and data[11:15] == b"\xaa\x55\x13\x70"
    # No status bytes and no idle packets on a CP210x: an idle read just times out.
    assert t.read(0.03) == b""
    t.close()


def test_usb_cp210x_baud_switch_and_gpio_reset() -> None:
    backend = SimCp210xBackend(lambda: SimChain("BM1370", 1, hashrate_hps=0), reset_gpio_mask=0x01)
    sleeps: list[float] = []
    t = UsbTransport.open(
        0x10C4,
        0xEA60,
        backend=backend,
        bridge=Cp210xBridge(reset_gpio_mask=0x01),
        sleep=sleeps.append,
    )
    # Fast UART (reg 0x28 = 11 30 02 00, 1 Mbaud), host follows.
    t.write(frames.write_register(0x28, bytes.fromhex("11300200")))
    t.set_baud(1_000_000)
    assert backend.host_baud == 1_000_000
    t.write(CHIP_ID_READ)
    assert _read(t, 11)[:4] == b"\xaa\x55\x13\x70"
    t.reset_chips()
    gpio = [(r.bm_request_type, r.w_value, r.w_index) for r in backend.control_log[-2:]]
    assert gpio == [(0x40, 0x37E1, 0x0001), (0x40, 0x37E1, 0x0101)]
    assert sleeps == [0.1, 0.1]
    t.write(CHIP_ID_READ)  # chips back at ~115,740 after reset: 1 Mbaud gets nothing
    assert t.read(0.05) == b""
    t.set_baud(115_200)
    t.write(CHIP_ID_READ)
    assert _read(t, 11)[:4] == b"\xaa\x55\x13\x70"
    t.close()


def test_usb_cp2105_gpio_goes_in_the_data_stage() -> None:
    backend = SimCp210xBackend(
        lambda: SimChain("BM1370", 1, hashrate_hps=0), dual_port=True, reset_gpio_mask=0x02
    )
    t = UsbTransport.open(
        0x10C4, 0xEA70, backend=backend, bridge=Cp210xBridge(dual_port=True, reset_gpio_mask=0x02)
    )
    t.reset_chips()
    last = backend.control_log[-2:]
    assert [(r.bm_request_type, r.data) for r in last] == [(0x41, b"\x02\x00"), (0x41, b"\x02\x02")]
    assert not backend.in_reset
    t.close()


def test_usb_cp210x_disabled_uart_passes_nothing() -> None:
    backend = SimCp210xBackend(lambda: SimChain("BM1370", 1, hashrate_hps=0))
    t = UsbTransport.open(0x10C4, 0xEA60, backend=backend)
    t.device.ctrl_transfer(0x41, 0x00, 0, 0, None)  # IFC_ENABLE(0)
    t.write(CHIP_ID_READ)
    assert t.read(0.05) == b""
    assert backend.bytes_dropped == len(CHIP_ID_READ)
    with pytest.raises(usb.core.USBError, match="Pipe"):
        t.device.ctrl_transfer(0x41, 0x42, 0, 0, None)  # unknown request stalls
    t.close()

"""UsbTransport over the simulated FTDI bridge (pyusb custom backend) in front of SimChain."""

from __future__ import annotations

import pytest
import usb.core
import usb.util

from drivers.asic.bm13xx import frames
from drivers.sim.chips import SimChain
from drivers.sim.usb_backend import SimUsbBackend
from drivers.transport import ftdi
from drivers.transport.base import TransportClosed
from drivers.transport.usb import (
    Cp210xBridge,
    DeviceGone,
    FtdiBridge,
    UsbTransport,
    UsbTransportError,
    bridge_for,
)

CHIP_ID_READ = bytes.fromhex("55aa520500000a")


def _backend(model: str = "BM1397", chips: int = 1) -> SimUsbBackend:
    return SimUsbBackend(lambda: SimChain(model, chips, hashrate_hps=0))


def _read_exactly(t: UsbTransport, n: int, timeout: float = 1.0) -> bytes:
    out = b""
    for _ in range(50):
        if len(out) >= n:
            break
        out += t.read(timeout / 10)
    return out


def _open(backend: SimUsbBackend, **kw) -> UsbTransport:
    return UsbTransport.open(ftdi.VID_FTDI, ftdi.PID_FTX, backend=backend, **kw)


def test_usb_sim_descriptors_look_like_an_ft_x() -> None:
    backend = _backend()
    dev = usb.core.find(idVendor=0x0403, idProduct=0x6015, backend=backend)
    assert dev is not None
    assert dev.bcdDevice == 0x1000
    intf = dev[0][(0, 0)]
    eps = sorted(ep.bEndpointAddress for ep in intf)
    assert eps == [0x02, 0x81]
    assert all(ep.wMaxPacketSize == 64 for ep in intf)
    assert usb.util.get_string(dev, dev.iSerialNumber) == "BLVMSIM0001"


def test_usb_open_sends_the_ftdi_init_sequence() -> None:
    backend = _backend()
    t = _open(backend)
    seq = [(r.bm_request_type, r.b_request, r.w_value, r.w_index) for r in backend.control_log]
    assert seq == [
        (0x40, 0, 0, 0),  # reset
        (0x40, 4, 8, 0),  # 8N1
        (0x40, 3, 26, 0),  # 115200 -> divisor 26
        (0x40, 2, 0, 0),  # no flow control
        (0x40, 9, 2, 0),  # latency timer 2 ms
        (0x40, 0, 1, 0),  # purge RX
        (0x40, 0, 2, 0),  # purge TX
    ]
    assert backend.host_baud == 115_385
    assert t.actual_baud == 115_385
    t.close()


def test_usb_enumeration_read_through_bridge() -> None:
    backend = _backend("BM1370", 6)
    t = _open(backend)
    t.write(CHIP_ID_READ)
    # 6 chips x 11 bytes = 66 bytes: more than one 62-byte packet payload.
    data = _read_exactly(t, 66)
    assert len(data) == 66
    replies = [data[i : i + 11] for i in range(0, 66, 11)]
    assert all(r[:4] == b"\xaa\x55\x13\x70" for r in replies)
    assert all(frames.reply_crc_ok(r) for r in replies)
    assert t.read(0.02) == b""
    t.close()


def test_usb_wrong_baud_gives_no_data_then_recovers() -> None:
    backend = _backend()
    t = _open(backend)
    t.set_baud(1_500_000)  # chips still at ~115,740
    assert backend.control_log[-1].b_request == ftdi.Request.SET_BAUD_RATE
    assert backend.control_log[-1].w_value == 2
    t.write(CHIP_ID_READ)
    assert t.read(0.05) == b""
    assert backend.bytes_dropped == len(CHIP_ID_READ)
    t.set_baud(115_200)
    t.write(CHIP_ID_READ)
    assert _read_exactly(t, 9)[:4] == b"\xaa\x55\x13\x97"
    t.close()


def test_usb_fast_baud_and_cbus_reset() -> None:
    sleeps: list[float] = []
    backend = _backend()
    t = _open(backend, bridge=FtdiBridge(reset_low_s=1.0, reset_high_s=0.2), sleep=sleeps.append)
    # BM1397 over FTDI: reg 0x18 = 00 00 61 31 (chips -> 1.5625 Mbaud), host -> divisor 2.
    t.write(frames.write_register(0x18, bytes.fromhex("00006131")))
    t.set_baud(1_500_000)
    t.write(CHIP_ID_READ)
    assert _read_exactly(t, 9)[:4] == b"\xaa\x55\x13\x97"
    before = len(backend.control_log)
    t.reset_chips()
    cbus = [r.w_value for r in backend.control_log[before:]]
    assert cbus == [0x20F2, 0x20F0, 0x20F2]
    assert sleeps == [1.0, 0.2]
    # The reset put the chips back at their power-on rate: 1.5 M no longer reaches them.
    t.write(CHIP_ID_READ)
    assert t.read(0.05) == b""
    t.set_baud(115_200)
    t.write(CHIP_ID_READ)
    assert _read_exactly(t, 9)[:4] == b"\xaa\x55\x13\x97"
    t.close()


def test_usb_unplug_raises_device_gone_and_reopen_recovers() -> None:
    backend = _backend()
    t = _open(backend)
    backend.unplug()
    with pytest.raises(DeviceGone):
        t.write(CHIP_ID_READ)
    with pytest.raises(DeviceGone):
        t.read(0.05)
    assert usb.core.find(idVendor=0x0403, idProduct=0x6015, backend=backend) is None
    with pytest.raises(DeviceGone, match="did not come back"):
        t.reopen(wait_s=0.05, poll_s=0.01)
    backend.replug()
    t.reopen(wait_s=1.0, poll_s=0.01)
    assert backend.host_baud == 115_385
    t.write(CHIP_ID_READ)
    assert _read_exactly(t, 9)[:4] == b"\xaa\x55\x13\x97"
    t.close()
    with pytest.raises(TransportClosed):
        t.write(b"x")
    t.close()  # idempotent


def test_usb_open_without_device_says_what_to_do() -> None:
    backend = _backend()
    backend.unplug()
    with pytest.raises(UsbTransportError, match="plugged in"):
        _open(backend)


def test_usb_bridge_table_and_cp210x_reset_steps() -> None:
    assert isinstance(bridge_for(0x0403, 0x6001), FtdiBridge)
    cp = bridge_for(0x10C4, 0xEA70)
    assert isinstance(cp, Cp210xBridge) and cp.dual_port
    assert cp.reset_steps() == []  # no reset line known: reset is a logged no-op
    wired = Cp210xBridge(reset_gpio_mask=0x01)
    steps = wired.reset_steps()
    assert [(r.w_index, hold) for r, hold in steps] == [(0x0001, 0.1), (0x0101, 0.1)]
    with pytest.raises(UsbTransportError):
        bridge_for(0x1234, 0x5678)


def test_usb_sim_bulk_in_packets_carry_modem_status() -> None:
    backend = _backend("BM1370", 6)
    t = _open(backend)
    dev = t.device
    idle = bytes(dev.read(0x81, 512, 100))
    assert idle == ftdi.IDLE_STATUS  # latency timer expired with nothing to send
    t.write(CHIP_ID_READ)
    raw = b""
    while len(ftdi.strip_modem_status(raw)) < 66:
        raw += bytes(dev.read(0x81, 512, 100))
    # 66 payload bytes -> a full packet (2 + 62) and a short one (2 + 4).
    assert len(raw) == 64 + 6
    assert raw[:2] == ftdi.IDLE_STATUS and raw[64:66] == ftdi.IDLE_STATUS
    assert ftdi.strip_modem_status(raw)[:4] == b"\xaa\x55\x13\x70"
    t.close()


def test_usb_reopen_only_accepts_the_same_stick() -> None:
    backend = _backend()
    t = _open(backend)
    assert t.serial_number == "BLVMSIM0001"
    backend.unplug()
    backend.strings[3] = "SOMEOTHERSTICK"
    backend.replug()
    with pytest.raises(DeviceGone, match="did not come back"):
        t.reopen(wait_s=0.05, poll_s=0.01)
    with pytest.raises(DeviceGone, match="reopen"):
        t.write(CHIP_ID_READ)
    backend.unplug()
    backend.strings[3] = "BLVMSIM0001"
    backend.replug()
    t.reopen(wait_s=0.5, poll_s=0.01)
    t.write(CHIP_ID_READ)
    assert _read_exactly(t, 9)[:4] == b"\xaa\x55\x13\x97"
    t.close()


def test_usb_ft232_variant_qemu_bridge() -> None:
    backend = SimUsbBackend(lambda: SimChain("BM1366", 2, hashrate_hps=0), product_id=0x6001)
    t = UsbTransport.open(0x0403, 0x6001, backend=backend)
    assert t.device.bcdDevice == 0x0600 and t.bridge.name == "ftdi-ft232"
    t.write(CHIP_ID_READ)
    data = _read_exactly(t, 22)
    assert data[:4] == b"\xaa\x55\x13\x66" and data[11:15] == b"\xaa\x55\x13\x66"
    t.close()


def test_usb_kernel_driver_is_detached_and_given_back() -> None:
    backend = SimUsbBackend(lambda: SimChain("BM1397", 1, hashrate_hps=0), kernel_driver=True)
    t = _open(backend)
    assert backend.kernel_driver is False  # ftdi_sio let go while we run
    t.write(CHIP_ID_READ)
    assert _read_exactly(t, 9)[:4] == b"\xaa\x55\x13\x97"
    t.close()
    assert backend.kernel_driver is True  # /dev/ttyUSB* comes back

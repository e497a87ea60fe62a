"""Simulated USB-UART bridges as pyusb backends, in front of a simulated chip chain.

``usb.core.find(backend=SimUsbBackend(...))`` returns a ``usb.core.Device`` whose
descriptors, vendor control requests and bulk endpoints behave like an FTDI
FT-X (or FT232R) bridge wired to a BM13xx chain, so ``drivers.transport.usb``
runs unmodified — the same code path as on a GekkoScience stick.

What is emulated, because the driver depends on it:
- Descriptors: one configuration, one vendor interface, bulk IN 0x81 / OUT 0x02
  with 64-byte packets; string descriptors (manufacturer, product, serial).
- SET_BAUD_RATE is decoded with the same divisor encoding; if the host's rate
  and the chips' rate differ by more than a UART tolerates (4.5 %), bytes in
  both directions are lost, as on real hardware.
- CBUS bit-bang: CB1 low holds the chips in reset (no hashing, no bytes); its
  rising edge resets the chain (addresses and baud back to defaults).
- Every IN packet starts with the two modem-status bytes; with nothing to send
  the bridge answers a status-only packet once its latency timer expires.
- ``unplug()`` / ``replug()``: while unplugged the device disappears from
  ``find`` and every call on an open handle raises ``USBError`` with errno
  ENODEV; a replug enumerates a new device address and a power-cycled chain.

:class:`SimCp210xBackend` does the same for a Silicon Labs CP210x: its interface
requests (IFC_ENABLE, SET_LINE_CTL, SET_BAUDRATE as a 32-bit rate, PURGE), GPIO latch
writes driving a configurable reset pin, no status bytes and no idle packets.

The chain is any object with ``feed(bytes)`` and ``take_output() -> bytes``
(``drivers.sim.chips.SimChain``). Optional parts used when present: ``baud``
(the chips' UART rate; otherwise the power-on rate is assumed), ``advance(now)``
(time passes, so chips hash) and ``reset()`` (the reset line).
"""

from __future__ import annotations

import array
import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import usb.backend
import usb.core

from drivers.transport import cp210x, ftdi

log = logging.getLogger(__name__)

#: The chips' power-on UART rate (reg 0x18 = 00 00 7A 31), about 115,749 baud.
CHIP_DEFAULT_BAUD = 115_749
#: An 8N1 character is 10 bits sampled mid-bit: past ~5 % rate mismatch the last bits are
#: sampled in the wrong bit time. 4.5 % still passes the Compac F's 1.5 Mbaud bridge against
#: the BM1397's 1.5625 Mbaud (reg 0x18 = 00 00 61 31), as the real stick does.
BAUD_TOLERANCE = 0.045
_CB1 = 0x02
_LIBUSB_ERROR_NO_DEVICE = -4
_LIBUSB_ERROR_TIMEOUT = -7
_LIBUSB_ERROR_PIPE = -9
_LIBUSB_SPEED_FULL = 2
_POLL_S = 0.001


class ChainLike(Protocol):
    """The sans-IO face of a simulated chip chain."""

    def feed(self, data: bytes) -> Any: ...

    def take_output(self) -> bytes: ...


@dataclass(slots=True)
class _DeviceDescriptor:
    idVendor: int
    idProduct: int
    bcdDevice: int
    address: int
    bus: int = 1
    port_number: int = 1
    port_numbers: tuple[int, ...] = (1,)
    speed: int = _LIBUSB_SPEED_FULL
    bLength: int = 18
    bDescriptorType: int = 1
    bcdUSB: int = 0x0200
    bDeviceClass: int = 0
    bDeviceSubClass: int = 0
    bDeviceProtocol: int = 0
    bMaxPacketSize0: int = 8
    iManufacturer: int = 1
    iProduct: int = 2
    iSerialNumber: int = 3
    bNumConfigurations: int = 1


@dataclass(slots=True)
class _ConfigDescriptor:
    bLength: int = 9
    bDescriptorType: int = 2
    wTotalLength: int = 32
    bNumInterfaces: int = 1
    bConfigurationValue: int = 1
    iConfiguration: int = 0
    bmAttributes: int = 0xA0
    bMaxPower: int = 45
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _InterfaceDescriptor:
    bLength: int = 9
    bDescriptorType: int = 4
    bInterfaceNumber: int = 0
    bAlternateSetting: int = 0
    bNumEndpoints: int = 2
    bInterfaceClass: int = 0xFF
    bInterfaceSubClass: int = 0xFF
    bInterfaceProtocol: int = 0xFF
    iInterface: int = 2
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _EndpointDescriptor:
    bEndpointAddress: int
    bLength: int = 7
    bDescriptorType: int = 5
    bmAttributes: int = 0x02  # bulk
    wMaxPacketSize: int = ftdi.PACKET_SIZE
    bInterval: int = 0
    bRefresh: int = 0
    bSynchAddress: int = 0
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _DeviceId:
    """What ``enumerate_devices`` yields: one plug-in of the stick."""

    generation: int


@dataclass(slots=True)
class _Handle:
    generation: int
    configuration: int = 0
    claimed: set[int] = field(default_factory=set)


def _gone() -> usb.core.USBError:
    return usb.core.USBError(
        "No such device (it may have been disconnected)", _LIBUSB_ERROR_NO_DEVICE, errno.ENODEV
    )


def _stall() -> usb.core.USBError:
    return usb.core.USBError("Pipe error", _LIBUSB_ERROR_PIPE, errno.EPIPE)


class _SimBridgeBackend(usb.backend.IBackend):
    """What every simulated bridge shares: plugging, descriptors, handles, the chain."""

    vid = 0
    pid = 0
    bcd = 0
    ep_in = 0x81
    ep_out = 0x02

    def __init__(
        self,
        chain_factory: Callable[[], ChainLike],
        *,
        serial_number: str = "BLVMSIM0001",
        product: str = "Compac F Bitcoin Miner (simulated)",
        manufacturer: str = "BLVM",
        baud_tolerance: float = BAUD_TOLERANCE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        kernel_driver: bool = False,
    ) -> None:
        self._factory = chain_factory
        #: Whether a kernel serial driver (ftdi_sio, cp210x) is bound to the interface.
        self.kernel_driver = kernel_driver
        self._clock = clock
        self._lock = threading.RLock()
        self._sleep = sleep
        self.strings = {1: manufacturer, 2: product, 3: serial_number}
        self.baud_tolerance = baud_tolerance
        self.plugged = True
        self.generation = 1
        # every OUT control transfer the device saw, as the host's own request type
        self.control_log: list[ftdi.ControlRequest] = []
        self.bytes_dropped = 0
        self._power_up()

    # -- the physical world -----------------------------------------------------------------

    def _power_up(self) -> None:
        self.chain: ChainLike = self._factory()
        self._rx = bytearray()

    def unplug(self) -> None:
        """Pull the stick: open handles die, ``find`` no longer sees it."""
        with self._lock:
            self.plugged = False
            log.info("simulated USB stick unplugged")

    def replug(self) -> None:
        """Plug it back in: a new device address and a power-cycled chain."""
        with self._lock:
            self.generation += 1
            self._power_up()
            self.plugged = True
            log.info("simulated USB stick replugged (generation %d)", self.generation)

    @property
    def in_reset(self) -> bool:
        return False

    @property
    def passes_data(self) -> bool:
        """Whether bytes cross the UART now (not in reset, host and chips in step)."""
        return not self.in_reset and self.baud_matches()

    def chip_baud(self) -> int:
        return int(getattr(self.chain, "baud", CHIP_DEFAULT_BAUD) or CHIP_DEFAULT_BAUD)

    def baud_matches(self) -> bool:
        chip = self.chip_baud()
        return abs(self.host_baud - chip) <= self.baud_tolerance * chip

    def _release_reset(self) -> None:
        """The chips leave reset: power-on state (addresses, baud, no job)."""
        reset = getattr(self.chain, "reset", None)
        if reset is not None:
            reset()
        else:
            self.chain = self._factory()
        self._rx.clear()
        log.debug("simulated chips released from reset")

    def _check(self, handle: _Handle) -> None:
        if not self.plugged or handle.generation != self.generation:
            raise _gone()

    def _pull_chain_output(self) -> None:
        if self.in_reset:
            return
        advance = getattr(self.chain, "advance", None)
        if advance is not None:
            advance(self._clock())
        out = self.chain.take_output()
        if not out:
            return
        if not self.passes_data:
            self.bytes_dropped += len(out)
            return
        self._rx += out

    # -- enumeration and descriptors --------------------------------------------------------

    def enumerate_devices(self):
        with self._lock:
            if self.plugged:
                yield _DeviceId(self.generation)

    def get_parent(self, dev):
        return None

    def get_device_descriptor(self, dev):
        return _DeviceDescriptor(
            idVendor=self.vid,
            idProduct=self.pid,
            bcdDevice=self.bcd,
            address=1 + dev.generation,
        )

    def get_configuration_descriptor(self, dev, config):
        if config != 0:
            raise IndexError(config)
        return _ConfigDescriptor()

    def get_interface_descriptor(self, dev, intf, alt, config):
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError(intf)
        return _InterfaceDescriptor()

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        addresses = (self.ep_in, self.ep_out)
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(addresses):
            raise IndexError(ep)
        return _EndpointDescriptor(bEndpointAddress=addresses[ep])

    # -- handles ----------------------------------------------------------------------------

    def open_device(self, dev):
        with self._lock:
            if not self.plugged or dev.generation != self.generation:
                raise _gone()
            return _Handle(dev.generation)

    def close_device(self, dev_handle):
        return None

    def set_configuration(self, dev_handle, config_value):
        with self._lock:
            self._check(dev_handle)
            dev_handle.configuration = config_value

    def get_configuration(self, dev_handle):
        with self._lock:
            self._check(dev_handle)
            return dev_handle.configuration

    def set_interface_altsetting(self, dev_handle, intf, altsetting):
        with self._lock:
            self._check(dev_handle)
            if (intf, altsetting) != (0, 0):
                raise _stall()

    def claim_interface(self, dev_handle, intf):
        with self._lock:
            self._check(dev_handle)
            if intf != 0:
                raise usb.core.USBError("Entity not found", -5, errno.ENOENT)
            dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle, intf):
        with self._lock:
            self._check(dev_handle)
            dev_handle.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle, intf):
        with self._lock:
            self._check(dev_handle)
            return self.kernel_driver

    def detach_kernel_driver(self, dev_handle, intf):
        with self._lock:
            self._check(dev_handle)
            self.kernel_driver = False

    def attach_kernel_driver(self, dev_handle, intf):
        with self._lock:
            self._check(dev_handle)
            self.kernel_driver = True

    def clear_halt(self, dev_handle, ep):
        with self._lock:
            self._check(dev_handle)

    def reset_device(self, dev_handle):
        with self._lock:
            self._check(dev_handle)

    # -- control endpoint -------------------------------------------------------------------

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        with self._lock:
            self._check(dev_handle)
            if bmRequestType & 0x80:
                if bmRequestType == 0x80 and bRequest == 0x06:  # standard GET_DESCRIPTOR
                    reply = self._descriptor(wValue >> 8, wValue & 0xFF)
                else:
                    reply = self._vendor_in(bmRequestType, bRequest, wValue, wIndex)
                n = min(len(reply), len(data))
                data[:n] = array.array("B", reply[:n])
                return n
            payload = bytes(data) if data is not None else b""
            self.control_log.append(
                ftdi.ControlRequest(bmRequestType, bRequest, wValue, wIndex, payload)
            )
            self._vendor_out(bmRequestType, bRequest, wValue, wIndex, payload)
            return len(payload)

    def _vendor_out(self, rtype: int, request: int, value: int, index: int, data: bytes) -> None:
        raise _stall()

    def _vendor_in(self, rtype: int, request: int, value: int, index: int) -> bytes:
        raise _stall()

    def _descriptor(self, dtype: int, index: int) -> bytes:
        if dtype != 0x03:
            raise _stall()
        if index == 0:
            return bytes((4, 3, 0x09, 0x04))  # English (US)
        text = self.strings.get(index)
        if text is None:
            raise _stall()
        body = text.encode("utf-16-le")
        return bytes((2 + len(body), 3)) + body

    # -- bulk endpoints ---------------------------------------------------------------------

    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        with self._lock:
            self._check(dev_handle)
            if ep != self.ep_out:
                raise _stall()
            payload = bytes(data)
            if self.passes_data:
                self.chain.feed(payload)
            else:
                self.bytes_dropped += len(payload)
            return len(payload)

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        if ep != self.ep_in:
            raise _stall()
        deadline = self._clock() + (timeout / 1000 if timeout else 1.0)
        while True:
            with self._lock:
                self._check(dev_handle)
                self._pull_chain_output()
                if self._rx:
                    return self._fill(buff)
                idle = self._idle_after()
            left = deadline - self._clock()
            if left <= 0:
                raise usb.core.USBTimeoutError(
                    "Operation timed out", _LIBUSB_ERROR_TIMEOUT, errno.ETIMEDOUT
                )
            if idle is not None and idle <= left:
                self._sleep(idle)
                with self._lock:
                    self._check(dev_handle)
                    self._pull_chain_output()
                    if self._rx:
                        return self._fill(buff)
                    packet = self._idle_packet()
                    buff[: len(packet)] = array.array("B", packet)
                    return len(packet)
            self._sleep(min(left, _POLL_S) if idle is None else left)

    def _idle_after(self) -> float | None:
        """Seconds after which an idle IN request completes anyway (None: only by timeout)."""
        return None

    def _idle_packet(self) -> bytes:
        return b""

    def _fill(self, buff) -> int:
        n = min(len(buff), len(self._rx))
        buff[:n] = array.array("B", self._rx[:n])
        del self._rx[:n]
        return n


class SimUsbBackend(_SimBridgeBackend):
    """A simulated FTDI FT-X (or FT232R with ``product_id=0x6001``) bridge."""

    vid = ftdi.VID_FTDI
    ep_in = ftdi.EP_IN
    ep_out = ftdi.EP_OUT

    def __init__(
        self, chain_factory: Callable[[], ChainLike], *, product_id: int = ftdi.PID_FTX, **kw: Any
    ) -> None:
        self.pid = product_id
        self.bcd = 0x1000 if product_id == ftdi.PID_FTX else 0x0600
        super().__init__(chain_factory, **kw)

    @property
    def product_id(self) -> int:
        return self.pid

    def _power_up(self) -> None:
        super()._power_up()
        self.host_baud = 9600  # an FTDI bridge's rate after power-on
        self.latency_ms = 16
        self.cbus_pins = 0x00  # bit-bang off: CBUS pins are inputs, reset line pulled high

    @property
    def in_reset(self) -> bool:
        """CB1 driven low as an output holds the chips' reset line."""
        driven = (self.cbus_pins >> 4) & _CB1
        return bool(driven) and not (self.cbus_pins & _CB1)

    def _vendor_out(self, rtype: int, request: int, value: int, index: int, data: bytes) -> None:
        if rtype != ftdi.REQTYPE_OUT:
            raise _stall()
        if request == ftdi.Request.RESET:
            if value in (ftdi.ResetValue.SIO, ftdi.ResetValue.PURGE_RX):
                self._rx.clear()
        elif request == ftdi.Request.SET_BAUD_RATE:
            self.host_baud = ftdi.decode_baud(value, index)
        elif request == ftdi.Request.SET_LATENCY_TIMER:
            if not 1 <= value <= 255:
                raise _stall()
            self.latency_ms = value
        elif request == ftdi.Request.SET_BITMODE:
            self._set_bitmode(value >> 8, value & 0xFF)
        elif request in (
            ftdi.Request.SET_DATA,
            ftdi.Request.SET_FLOW_CTRL,
            ftdi.Request.MODEM_CTRL,
        ):
            pass
        else:
            raise _stall()

    def _set_bitmode(self, mode: int, pins: int) -> None:
        was_reset = self.in_reset
        if mode == ftdi.BitMode.CBUS:
            self.cbus_pins = pins
        elif mode == ftdi.BitMode.RESET:
            self.cbus_pins = 0x00
        else:
            raise _stall()
        if was_reset and not self.in_reset:
            self._release_reset()

    def _vendor_in(self, rtype: int, request: int, value: int, index: int) -> bytes:
        if rtype == ftdi.REQTYPE_IN and request == ftdi.Request.GET_MODEM_STATUS:
            return ftdi.IDLE_STATUS
        if rtype == ftdi.REQTYPE_IN and request == ftdi.Request.GET_LATENCY_TIMER:
            return bytes((self.latency_ms,))
        raise _stall()

    def _idle_after(self) -> float | None:
        # The latency timer expires with nothing to say: a status-only packet.
        return self.latency_ms / 1000

    def _idle_packet(self) -> bytes:
        return ftdi.IDLE_STATUS

    def _fill(self, buff) -> int:
        room = (len(buff) // ftdi.PACKET_SIZE) * (ftdi.PACKET_SIZE - ftdi.STATUS_LEN)
        room += max(0, len(buff) % ftdi.PACKET_SIZE - ftdi.STATUS_LEN)
        payload = bytes(self._rx[:room])
        del self._rx[: len(payload)]
        framed = ftdi.frame_in_packets(payload)
        buff[: len(framed)] = array.array("B", framed)
        return len(framed)


class SimCp210xBackend(_SimBridgeBackend):
    """A simulated CP2102/CP2104 (or CP2105 with ``dual_port=True``, interface 0 only).

    ``reset_gpio_mask`` names the GPIO latch bit wired to the chips' reset line (none by
    default, as on sticks without one): driving it low holds the chips in reset.
    """

    vid = cp210x.VID_SILABS
    ep_in = cp210x.EP_IN
    ep_out = cp210x.EP_OUT
    bcd = 0x0100

    def __init__(
        self,
        chain_factory: Callable[[], ChainLike],
        *,
        dual_port: bool = False,
        reset_gpio_mask: int | None = None,
        **kw: Any,
    ) -> None:
        self.dual_port = dual_port
        self.pid = cp210x.PID_CP2105 if dual_port else cp210x.PID_CP210X
        self.reset_gpio_mask = reset_gpio_mask
        super().__init__(chain_factory, **kw)

    def _power_up(self) -> None:
        super()._power_up()
        self.host_baud = 9600
        self.enabled = False
        self.line_ctl = 0
        self.latch = 0xFF  # GPIO outputs high after power-on

    @property
    def in_reset(self) -> bool:
        mask = self.reset_gpio_mask
        return mask is not None and not self.latch & mask

    @property
    def passes_data(self) -> bool:
        return self.enabled and self.line_ctl == cp210x.LINE_8N1 and super().passes_data

    def _vendor_out(self, rtype: int, request: int, value: int, index: int, data: bytes) -> None:
        if request == cp210x.Request.VENDOR_SPECIFIC and value == cp210x.WRITE_LATCH:
            if self.dual_port and rtype == cp210x.REQTYPE_HOST_TO_INTERFACE and len(data) == 2:
                mask, state = data[0], data[1]
            elif not self.dual_port and rtype == cp210x.REQTYPE_HOST_TO_DEVICE:
                mask, state = index & 0xFF, index >> 8
            else:
                raise _stall()
            was_reset = self.in_reset
            self.latch = (self.latch & ~mask) | (state & mask)
            if was_reset and not self.in_reset:
                self._release_reset()
            return
        if rtype != cp210x.REQTYPE_HOST_TO_INTERFACE or index != 0:
            raise _stall()
        if request == cp210x.Request.IFC_ENABLE:
            self.enabled = bool(value & 1)
        elif request == cp210x.Request.SET_LINE_CTL:
            self.line_ctl = value
        elif request == cp210x.Request.SET_BAUDRATE:
            if len(data) != 4:
                raise _stall()
            self.host_baud = int.from_bytes(data, "little")
        elif request == cp210x.Request.PURGE:
            self._rx.clear()
        elif request in (cp210x.Request.SET_MHS, cp210x.Request.SET_FLOW):
            pass
        else:
            raise _stall()

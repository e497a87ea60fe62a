"""USB transport: BM13xx chains behind an FTDI or CP210x bridge, driven through pyusb.

Talking to the bridge directly (instead of through the kernel's ``ftdi_sio`` /
``cp210x`` tty) gives us the CBUS/GPIO reset line and control of the latency
timer, which USB sticks such as the GekkoScience Compac F need. Each bridge
family is a small :class:`Bridge` object that says which control requests to
send; :class:`UsbTransport` owns the pyusb device and implements the
``drivers.transport.base.Transport`` contract on top.

Unplug handling: every pyusb error meaning "no such device" becomes
:class:`DeviceGone`. The caller (miner daemon, tests) then calls
:meth:`UsbTransport.reopen`, which waits for a device with the same identity
to reappear and brings the bridge up again at the initial baud rate; the chips
lost power, so the ASIC driver must re-enumerate them.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import usb.core
import usb.util

from drivers.transport import base, cp210x, ftdi
from drivers.transport.base import TransportClosed, TransportError
from drivers.transport.ftdi import ControlRequest

if TYPE_CHECKING:
    from drivers.boards.model import BoardDef

log = logging.getLogger(__name__)

DEFAULT_BAUD = 115_200
#: Read size per bulk transfer: a whole number of packets, so status bytes stay aligned.
READ_CHUNK = 8 * 64
_GONE_ERRNOS = {errno.ENODEV, errno.ENXIO, errno.ESHUTDOWN}
_LIBUSB_ERROR_NO_DEVICE = -4


class UsbTransportError(TransportError):
    """A USB bridge refused a request or was not found."""


class DeviceGone(UsbTransportError, base.DeviceGone):
    """The device was unplugged (or lost power) while in use."""


class Bridge(Protocol):
    """What differs between USB-UART bridge families."""

    name: str
    ep_in: int
    ep_out: int
    packet_size: int

    def init_requests(self, baud: int) -> list[ControlRequest]: ...

    def baud_requests(self, baud: int) -> tuple[list[ControlRequest], int]:
        """Requests that set ``baud`` and the rate the bridge will really run at."""
        ...

    def reset_steps(self) -> list[tuple[ControlRequest, float]]:
        """Chip reset as (request, seconds to hold afterwards); empty if no reset line."""
        ...

    def unframe(self, transfer: bytes) -> bytes:
        """Payload bytes of one bulk IN transfer."""
        ...

    @property
    def min_transfer_ms(self) -> int:
        """Shortest timeout for one bulk IN transfer (short ones can lose bytes)."""
        ...


@dataclass(slots=True)
class FtdiBridge:
    """FT232R / FT-X: divisor baud encoding, CBUS bit-bang reset, 2 status bytes per packet."""

    reset_low_s: float = 0.1
    reset_high_s: float = 0.1
    latency_ms: int = 2
    name: str = "ftdi"
    ep_in: int = ftdi.EP_IN
    ep_out: int = ftdi.EP_OUT
    packet_size: int = ftdi.PACKET_SIZE
    stats: ftdi.InPacketStats = field(default_factory=ftdi.InPacketStats)

    @property
    def min_transfer_ms(self) -> int:
        # The bridge answers every IN request within its latency timer (a status-only packet
        # when idle), so a transfer never needs to time out and lose bytes mid-way.
        return self.latency_ms + 20

    def init_requests(self, baud: int) -> list[ControlRequest]:
        return ftdi.init_requests(baud, self.latency_ms)

    def baud_requests(self, baud: int) -> tuple[list[ControlRequest], int]:
        req, setting = ftdi.baud_request(baud)
        return [req], setting.actual

    def reset_steps(self) -> list[tuple[ControlRequest, float]]:
        return [
            (ftdi.cbus_request(ftdi.CBUS_RESET_HIGH), 0.0),
            (ftdi.cbus_request(ftdi.CBUS_RESET_LOW), self.reset_low_s),
            (ftdi.cbus_request(ftdi.CBUS_RESET_HIGH), self.reset_high_s),
        ]

    def unframe(self, transfer: bytes) -> bytes:
        return ftdi.strip_modem_status(transfer, self.packet_size, self.stats)


@dataclass(slots=True)
class Cp210xBridge:
    """CP2102/CP2104 (single port) or CP2105 (dual): integer baud, optional GPIO reset."""

    dual_port: bool = False
    interface: int = 0
    reset_gpio_mask: int | None = None
    reset_low_s: float = 0.1
    reset_high_s: float = 0.1
    name: str = "cp210x"
    ep_in: int = cp210x.EP_IN
    ep_out: int = cp210x.EP_OUT
    packet_size: int = cp210x.PACKET_SIZE

    def init_requests(self, baud: int) -> list[ControlRequest]:
        return cp210x.init_requests(baud, self.interface)

    def baud_requests(self, baud: int) -> tuple[list[ControlRequest], int]:
        return [cp210x.baud_request(baud, self.interface)], baud

    @property
    def min_transfer_ms(self) -> int:
        # CP210x holds partial IN data for a few ms; shorter transfers could time out
        # half-filled, and libusb drops the bytes of a timed-out transfer.
        return 20

    def reset_steps(self) -> list[tuple[ControlRequest, float]]:
        mask = self.reset_gpio_mask
        if mask is None:
            return []
        return [
            (cp210x.gpio_request(mask, 0x00, self.dual_port, self.interface), self.reset_low_s),
            (cp210x.gpio_request(mask, mask, self.dual_port, self.interface), self.reset_high_s),
        ]

    def unframe(self, transfer: bytes) -> bytes:
        return bytes(transfer)


@dataclass(frozen=True, slots=True)
class BridgeModel:
    """A known USB id and how to drive it."""

    vid: int
    pid: int
    name: str
    make: Callable[[], Bridge]


KNOWN_BRIDGES: dict[tuple[int, int], BridgeModel] = {
    (ftdi.VID_FTDI, ftdi.PID_FTX): BridgeModel(
        ftdi.VID_FTDI, ftdi.PID_FTX, "FTDI FT-X", lambda: FtdiBridge(name="ftdi-ftx")
    ),
    (ftdi.VID_FTDI, ftdi.PID_FT232): BridgeModel(
        ftdi.VID_FTDI, ftdi.PID_FT232, "FTDI FT232", lambda: FtdiBridge(name="ftdi-ft232")
    ),
    (cp210x.VID_SILABS, cp210x.PID_CP210X): BridgeModel(
        cp210x.VID_SILABS, cp210x.PID_CP210X, "CP210x", lambda: Cp210xBridge()
    ),
    (cp210x.VID_SILABS, cp210x.PID_CP2105): BridgeModel(
        cp210x.VID_SILABS,
        cp210x.PID_CP2105,
        "CP2105",
        lambda: Cp210xBridge(dual_port=True, name="cp2105"),
    ),
}


def bridge_for(vid: int, pid: int) -> Bridge:
    """A fresh bridge driver for a known USB id (``UsbTransportError`` otherwise)."""
    model = KNOWN_BRIDGES.get((vid, pid))
    if model is None:
        raise UsbTransportError(f"unknown USB-UART bridge {vid:04x}:{pid:04x}")
    return model.make()


def is_gone(exc: BaseException) -> bool:
    """Does this pyusb error mean the device is no longer there?"""
    if isinstance(exc, usb.core.USBTimeoutError):
        return False
    if not isinstance(exc, usb.core.USBError):
        return False
    return exc.errno in _GONE_ERRNOS or exc.backend_error_code == _LIBUSB_ERROR_NO_DEVICE


def find_devices(
    vid: int, pid: int, backend: Any = None, serial_number: str | None = None
) -> Iterator[usb.core.Device]:
    """Devices with this id (and serial number, when given). Raises on no backend."""
    found = usb.core.find(find_all=True, idVendor=vid, idProduct=pid, backend=backend)
    for dev in found:
        if serial_number is not None and _serial_of(dev) != serial_number:
            continue
        yield dev


def _serial_of(dev: usb.core.Device) -> str | None:
    if not dev.iSerialNumber:
        return None
    try:
        return usb.util.get_string(dev, dev.iSerialNumber)
    except (usb.core.USBError, ValueError, NotImplementedError):
        return None


class UsbTransport:
    """A BM13xx chain behind a USB-UART bridge (implements ``Transport``)."""

    def __init__(
        self,
        device: usb.core.Device,
        bridge: Bridge,
        *,
        baud: int = DEFAULT_BAUD,
        backend: Any = None,
        serial_number: str | None = None,
        io_timeout_ms: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dev: usb.core.Device | None = device
        self.bridge = bridge
        self.vid = int(device.idVendor)
        self.pid = int(device.idProduct)
        # Remember which stick this is, so reopen() after a replug takes the same one back.
        self.serial_number = serial_number if serial_number is not None else _serial_of(device)
        self.initial_baud = baud
        self.baud = baud
        self.actual_baud = baud
        self._backend = backend
        self._io_timeout_ms = io_timeout_ms
        self._sleep = sleep
        self._clock = clock
        self._closed = False
        self._detached_kernel_driver = False
        self._bring_up()

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        vid: int,
        pid: int,
        *,
        backend: Any = None,
        serial_number: str | None = None,
        baud: int = DEFAULT_BAUD,
        bridge: Bridge | None = None,
        **kwargs: Any,
    ) -> UsbTransport:
        """Find the first matching device and bring its bridge up at ``baud``."""
        try:
            dev = next(find_devices(vid, pid, backend, serial_number), None)
        except usb.core.NoBackendError as exc:
            raise UsbTransportError(
                "no USB backend: install libusb-1.0 (Debian: libusb-1.0-0)"
            ) from exc
        if dev is None:
            raise UsbTransportError(f"no USB device {vid:04x}:{pid:04x} found; is it plugged in?")
        return cls(
            dev,
            bridge or bridge_for(vid, pid),
            baud=baud,
            backend=backend,
            serial_number=serial_number,
            **kwargs,
        )

    @classmethod
    def for_board(cls, board: BoardDef, **kwargs: Any) -> UsbTransport:
        """Open the USB board ``board`` describes, with its reset timing."""
        if board.usb_id is None:
            raise UsbTransportError(f"board {board.name} is not a USB board")
        vid, pid = board.usb_id.vid, board.usb_id.pid
        bridge = bridge_for(vid, pid)
        if isinstance(bridge, FtdiBridge | Cp210xBridge):
            bridge.reset_low_s = board.reset_low_ms / 1000
            bridge.reset_high_s = board.reset_high_ms / 1000
        return cls.open(vid, pid, bridge=bridge, **kwargs)

    @property
    def device(self) -> usb.core.Device:
        if self._closed:
            raise TransportClosed("USB transport is closed")
        if self._dev is None:
            raise DeviceGone(
                f"USB device {self.vid:04x}:{self.pid:04x} is not present; call reopen()"
            )
        return self._dev

    def _bring_up(self) -> None:
        dev = self.device
        with self._mapped_errors("bring-up"):
            try:
                if dev.is_kernel_driver_active(0):
                    dev.detach_kernel_driver(0)
                    self._detached_kernel_driver = True
            except NotImplementedError:
                pass
            try:
                dev.get_active_configuration()
            except usb.core.USBError as exc:
                if is_gone(exc):
                    raise
                # Unconfigured: select configuration 1. (Re-selecting an active one would
                # reset the bridge's endpoints for nothing.)
                dev.set_configuration()
            usb.util.claim_interface(dev, 0)
            for req in self.bridge.init_requests(self.baud):
                self._control(req)
        _, self.actual_baud = self.bridge.baud_requests(self.baud)
        log.info(
            "USB bridge %s %04x:%04x up at %d baud (really %d)",
            self.bridge.name,
            self.vid,
            self.pid,
            self.baud,
            self.actual_baud,
        )

    # -- Transport ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        dev = self.device
        view = memoryview(bytes(data))
        with self._mapped_errors("write"):
            while view:
                sent = dev.write(self.bridge.ep_out, view, self._io_timeout_ms)
                if sent <= 0:
                    raise UsbTransportError("bulk OUT accepted no bytes")
                view = view[sent:]

    def read(self, timeout: float) -> bytes:
        dev = self.device
        deadline = self._clock() + max(timeout, 0.0)
        while True:
            remaining_ms = int((deadline - self._clock()) * 1000)
            transfer_ms = max(remaining_ms, self.bridge.min_transfer_ms)
            try:
                transfer = dev.read(self.bridge.ep_in, READ_CHUNK, transfer_ms)
            except usb.core.USBTimeoutError:
                return b""
            except usb.core.USBError as exc:
                raise self._translate(exc, "read") from exc
            payload = self.bridge.unframe(bytes(transfer))
            if payload:
                return payload
            if remaining_ms <= 0:
                return b""

    def set_baud(self, baud: int) -> None:
        reqs, actual = self.bridge.baud_requests(baud)
        with self._mapped_errors("set baud"):
            for req in reqs:
                self._control(req)
        self.baud, self.actual_baud = baud, actual
        log.debug("USB bridge baud %d (really %d)", baud, actual)

    def reset_chips(self) -> None:
        steps = self.bridge.reset_steps()
        if not steps:
            log.info("bridge %s has no reset line configured; chip reset skipped", self.bridge.name)
            return
        with self._mapped_errors("chip reset"):
            for req, hold in steps:
                self._control(req)
                if hold > 0:
                    self._sleep(hold)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        dev, self._dev = self._dev, None
        if dev is None:
            return
        with contextlib.suppress(usb.core.USBError, NotImplementedError, ValueError):
            usb.util.release_interface(dev, 0)
        if self._detached_kernel_driver:
            # Hand the bridge back to ftdi_sio/cp210x so its /dev/ttyUSB* returns.
            with contextlib.suppress(usb.core.USBError, NotImplementedError):
                dev.attach_kernel_driver(0)
        with contextlib.suppress(usb.core.USBError):
            usb.util.dispose_resources(dev)

    # -- unplug / replug --------------------------------------------------------------------

    def reopen(self, wait_s: float = 5.0, poll_s: float = 0.1) -> None:
        """After :class:`DeviceGone`: wait for the device to return and bring it up again.

        Only a device with the same VID/PID (and serial number, if one was given)
        is accepted. The bridge comes back at the initial baud; the chips behind
        it were power-cycled, so the caller re-runs chip enumeration.
        """
        if self._closed:
            raise TransportClosed("USB transport is closed")
        old = self._dev
        if old is not None:
            with contextlib.suppress(usb.core.USBError):
                usb.util.dispose_resources(old)
        self._dev = None
        deadline = self._clock() + wait_s
        while True:
            dev = next(find_devices(self.vid, self.pid, self._backend, self.serial_number), None)
            if dev is not None:
                self._dev = dev
                self.baud = self.initial_baud
                try:
                    self._bring_up()
                except DeviceGone:
                    self._dev = None
                else:
                    log.info("USB device %04x:%04x is back", self.vid, self.pid)
                    return
            if self._clock() >= deadline:
                raise DeviceGone(
                    f"USB device {self.vid:04x}:{self.pid:04x} did not come back "
                    f"within {wait_s:.1f} s"
                )
            self._sleep(poll_s)

    # -- helpers ----------------------------------------------------------------------------

    def _control(self, req: ControlRequest) -> None:
        payload = req.data if req.data else None
        self.device.ctrl_transfer(
            req.bm_request_type,
            req.b_request,
            req.w_value,
            req.w_index,
            payload,
            self._io_timeout_ms,
        )

    def _translate(self, exc: usb.core.USBError, what: str) -> UsbTransportError:
        if is_gone(exc):
            return DeviceGone(f"USB device {self.vid:04x}:{self.pid:04x} gone during {what}")
        return UsbTransportError(f"USB {what} failed: {exc}")

    def _mapped_errors(self, what: str) -> _ErrorMap:
        return _ErrorMap(self, what)


class _ErrorMap:
    """Context manager turning pyusb errors into transport errors."""

    __slots__ = ("owner", "what")

    def __init__(self, owner: UsbTransport, what: str) -> None:
        self.owner = owner
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, usb.core.USBError):
            raise self.owner._translate(exc, self.what) from exc
        return False

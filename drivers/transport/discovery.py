"""Find mining boards: USB bridges by VID/PID, serial ports that answer, running sim boards.

The only thing ever written to a port is the BM13xx broadcast chip-id read
(``55 AA 52 05 00 00 0A``), at the chips' power-on rate of 115200 baud, and only
to a port nobody else has open. Chips answer it in any state after reset, and
a non-mining device on the line just sees seven stray bytes.

Replies are decoded with the ASIC driver's own frame decoder
(``drivers.asic.bm13xx.frames.ReplyDecoder``), so a board found here is one the
driver will bring up.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import serial
import serial.tools.list_ports

from drivers.asic.bm13xx import frames
from drivers.asic.bm13xx.chips import get_chip
from drivers.asic.errors import ConfigError
from drivers.boards import BoardError, UsbId, identify
from drivers.transport.base import Transport, TransportError
from drivers.transport.usb import KNOWN_BRIDGES, UsbTransport, UsbTransportError, bridge_for

log = logging.getLogger(__name__)

PROBE_BAUD = 115_200
CHIP_ID_READ = bytes.fromhex("55aa520500000a")
SERIAL_PREFIXES = ("/dev/ttyUSB", "/dev/ttyACM", "/dev/ttyS")
_CHIP_PREAMBLE = b"\xaa\x55"


@dataclass(frozen=True, slots=True)
class ChipProbe:
    """What answered the chip-id read."""

    model: str | None
    chip_id: int | None
    chip_count: int
    bytes_received: int


@dataclass(slots=True)
class FoundBoard:
    """One row of ``blvm hw scan``."""

    source: str  # "usb", "serial", "sim"
    port: str
    bridge: str | None = None
    usb_id: str | None = None
    serial_number: str | None = None
    chip_model: str | None = None
    chip_count: int = 0
    board: str | None = None
    status: str = "ok"  # ok | no-answer | busy | error | via-tty
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reply decoding -------------------------------------------------------------------------


def decode_chip_id_replies(data: bytes) -> ChipProbe:
    """Count chips in the replies to a broadcast chip-id read (model taken from the replies).

    The first ``AA 55`` followed by a known chip id picks the model; the ASIC driver's
    decoder then counts the CRC-valid chip-id register replies of that model.
    """
    pos = 0
    while True:
        start = data.find(_CHIP_PREAMBLE, pos)
        if start < 0 or start + 4 > len(data):
            return ChipProbe(None, None, 0, len(data))
        chip_id = int.from_bytes(data[start + 2 : start + 4], "big")
        try:
            spec = get_chip(chip_id)
        except ConfigError:  # not a chip id we know: keep looking
            pos = start + 1
            continue
        decoder = frames.ReplyDecoder(spec)
        count = sum(
            1
            for reply in decoder.feed(bytes(data[start:]))
            if isinstance(reply, frames.RegisterReply)
            and reply.register == 0x00
            and reply.value >> 16 == spec.chip_id
        )
        if count:
            return ChipProbe(spec.model, spec.chip_id, count, len(data))
        pos = start + 1


def probe_transport(
    transport: Transport,
    timeout: float = 0.5,
    quiet: float = 0.15,
    clock: Callable[[], float] = time.monotonic,
) -> ChipProbe:
    """Send the chip-id read and collect replies until ``quiet`` s pass with nothing new."""
    drain_until = clock() + quiet
    while transport.read(0.0) and clock() < drain_until:
        pass  # stale bytes from before we came (bounded: a chatty device never stops)
    transport.write(CHIP_ID_READ)
    data = bytearray()
    deadline = clock() + timeout
    while True:
        left = deadline - clock()
        if left <= 0:
            break
        chunk = transport.read(min(quiet if data else left, left))
        if not chunk:
            if data:
                break
            continue
        data += chunk
    return decode_chip_id_replies(bytes(data))


# -- who has a port open -------------------------------------------------------------------


def port_users(path: str, ignore_pids: Iterable[int] = ()) -> list[int]:
    """PIDs (other than ours and ``ignore_pids``) that hold ``path`` open, from /proc."""
    try:
        target = os.path.realpath(path)
    except OSError:
        return []
    skip = {os.getpid(), *ignore_pids}
    users: list[int] = []
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    users.append(int(entry.name))
                    break
            except OSError:
                continue
    return users


# -- serial ports ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SerialPortInfo:
    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    description: str = ""


def list_serial_ports(prefixes: tuple[str, ...] = SERIAL_PREFIXES) -> list[SerialPortInfo]:
    """Serial ports the OS reports (pyserial), limited to the mining-relevant kinds."""
    ports = []
    for info in serial.tools.list_ports.comports():
        if not info.device.startswith(prefixes):
            continue
        ports.append(
            SerialPortInfo(
                info.device, info.vid, info.pid, info.serial_number, info.description or ""
            )
        )
    return sorted(ports, key=lambda p: p.device)


class _ProbePort:
    """Minimal blocking Transport over an exclusively opened pyserial port (probe only)."""

    def __init__(self, path: str, baud: int = PROBE_BAUD) -> None:
        self._ser = serial.Serial(path, baud, timeout=0, write_timeout=0.5, exclusive=True)

    def write(self, data: bytes) -> None:
        self._ser.write(data)

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            data = self._ser.read(4096)
            if data or time.monotonic() >= deadline:
                return data
            time.sleep(min(0.005, max(deadline - time.monotonic(), 0)))

    def set_baud(self, baud: int) -> None:
        self._ser.baudrate = baud

    def reset_chips(self) -> None:
        return None

    def close(self) -> None:
        self._ser.close()


def probe_serial_port(
    path: str,
    timeout: float = 0.5,
    ignore_pids: Iterable[int] = (),
    source: str = "serial",
) -> FoundBoard:
    """Probe one serial port, unless somebody else has it open."""
    found = FoundBoard(source=source, port=path)
    users = port_users(path, ignore_pids)
    if users:
        found.status = "busy"
        found.detail = f"open by pid {', '.join(map(str, users))}; not probed"
        return found
    try:
        port = _ProbePort(path)
    except (serial.SerialException, OSError) as exc:
        busy = getattr(exc, "errno", None) in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK)
        busy = busy or "lock" in str(exc).lower()
        found.status = "busy" if busy else "error"
        found.detail = f"cannot open: {exc}"
        return found
    return _probe_into(found, port, timeout, None, (serial.SerialException, OSError))


def _probe_into(
    found: FoundBoard,
    transport: Transport,
    timeout: float,
    usb_id: UsbId | None,
    io_errors: tuple[type[Exception], ...] = (),
) -> FoundBoard:
    """Probe the chips behind an open ``transport``, close it, and record the answer."""
    try:
        probe = probe_transport(transport, timeout)
    except (TransportError, *io_errors) as exc:
        found.status = "error"
        found.detail = f"probe failed: {exc}"
        return found
    finally:
        transport.close()
    _fill_from_probe(found, probe, usb_id)
    return found


def _fill_from_probe(found: FoundBoard, probe: ChipProbe, usb_id: UsbId | None) -> None:
    found.extra["bytes_received"] = probe.bytes_received
    if probe.model is None:
        found.status = "no-answer"
        found.detail = (
            "no BM13xx answered the chip-id read"
            if not probe.bytes_received
            else f"{probe.bytes_received} bytes but no valid chip-id reply"
        )
        return
    found.chip_model = probe.model
    found.chip_count = probe.chip_count
    try:
        found.board = identify(probe.model, probe.chip_count, usb_id).name
    except BoardError as exc:
        found.detail = str(exc)


# -- USB bridges ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsbBridgeInfo:
    vid: int
    pid: int
    bus: int | None
    address: int | None
    bridge: str
    serial_number: str | None
    kernel_driver: bool


def list_usb_bridges(backend: Any = None) -> list[UsbBridgeInfo]:
    """Known USB-UART bridges on the bus (raises ``UsbTransportError`` without a backend)."""
    import usb.core
    import usb.util

    out = []
    for (vid, pid), model in KNOWN_BRIDGES.items():
        try:
            devices = list(
                usb.core.find(find_all=True, idVendor=vid, idProduct=pid, backend=backend)
            )
        except usb.core.NoBackendError as exc:
            raise UsbTransportError(
                "no USB backend (install libusb-1.0, Debian package libusb-1.0-0)"
            ) from exc
        for dev in devices:
            try:
                serial_number = usb.util.get_string(dev, dev.iSerialNumber)
            except (usb.core.USBError, ValueError, NotImplementedError):
                serial_number = None
            try:
                kernel = bool(dev.is_kernel_driver_active(0))
            except (usb.core.USBError, NotImplementedError):
                kernel = False
            out.append(
                UsbBridgeInfo(vid, pid, dev.bus, dev.address, model.name, serial_number, kernel)
            )
    return out


def probe_usb_bridge(info: UsbBridgeInfo, backend: Any = None, timeout: float = 0.5) -> FoundBoard:
    """Probe the chips behind a bridge through pyusb (the USB transport's own path)."""
    usb_id = UsbId(info.vid, info.pid)
    found = FoundBoard(
        source="usb",
        port=f"usb:{info.bus}:{info.address}",
        bridge=info.bridge,
        usb_id=str(usb_id),
        serial_number=info.serial_number,
    )
    if info.kernel_driver:
        found.status = "via-tty"
        found.detail = "bound to the kernel serial driver; probed through its tty"
        return found
    try:
        transport = UsbTransport.open(
            info.vid,
            info.pid,
            backend=backend,
            serial_number=info.serial_number,
            baud=PROBE_BAUD,
            bridge=bridge_for(info.vid, info.pid),
        )
    except UsbTransportError as exc:
        found.status = "busy" if "busy" in str(exc).lower() else "error"
        found.detail = str(exc)
        return found
    return _probe_into(found, transport, timeout, usb_id)


# -- simulated boards -----------------------------------------------------------------------


def _sim_boards() -> list[Any]:
    """Running simulated boards, from the simulator's discovery records."""
    from drivers.sim.discovery import list_sim_boards

    return list(list_sim_boards())


def probe_sim_board(board: Any, timeout: float = 0.5) -> FoundBoard:
    """Probe a running sim board's pty like a real port (its own process may hold it open).

    ``board`` is a ``drivers.sim.discovery.SimBoardRecord``. If a miner already has the
    pty open, the board is reported busy with the model and count the simulator declares.
    """
    found = probe_serial_port(board.port, timeout, ignore_pids=[board.pid], source="sim")
    found.bridge = "pty (simulated board)"
    found.extra["sim"] = {
        "id": board.id,
        "pid": board.pid,
        "model": board.model,
        "chips": board.chips,
        "control": board.control,
    }
    if found.status == "busy":
        found.detail += "; model and count as the simulator declares them"
        found.chip_model = board.model.upper()
        found.chip_count = int(board.chips)
        with contextlib.suppress(BoardError):
            found.board = identify(found.chip_model, found.chip_count).name
    return found


# -- everything -------------------------------------------------------------------------------


@dataclass(slots=True)
class ScanResult:
    boards: list[FoundBoard] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"boards": [b.to_dict() for b in self.boards], "notes": list(self.notes)}


def scan(
    *,
    usb: bool = True,
    serial_ports: bool = True,
    sim: bool = True,
    extra_ports: Iterable[str] = (),
    usb_backend: Any = None,
    timeout: float = 0.5,
) -> ScanResult:
    """Find every board reachable from this host."""
    result = ScanResult()
    tty_of_usb: dict[tuple[int, int, str | None], str] = {}
    sim_ports: set[str] = set()
    sims: list[Any] = []
    if sim:
        try:
            sims = _sim_boards()
        except Exception as exc:  # a broken registry must not hide real hardware
            result.notes.append(f"sim discovery failed: {exc}")
        sim_ports = {os.path.realpath(b.port) for b in sims}
    if serial_ports or extra_ports:
        ports = list_serial_ports() if serial_ports else []
        known = {p.device for p in ports}
        ports += [SerialPortInfo(p) for p in extra_ports if p not in known]
        for info in ports:
            if os.path.realpath(info.device) in sim_ports:
                continue
            found = probe_serial_port(info.device, timeout)
            if info.vid is not None and info.pid is not None:
                found.usb_id = f"{info.vid:04x}:{info.pid:04x}"
                found.serial_number = info.serial_number
                model = KNOWN_BRIDGES.get((info.vid, info.pid))
                found.bridge = model.name if model else info.description or None
                tty_of_usb[(info.vid, info.pid, info.serial_number)] = info.device
                if found.chip_model and model is not None:
                    try:
                        usb_id = UsbId(info.vid, info.pid)
                        found.board = identify(found.chip_model, found.chip_count, usb_id).name
                    except BoardError:
                        pass
            result.boards.append(found)
    if usb:
        try:
            bridges = list_usb_bridges(usb_backend)
        except UsbTransportError as exc:
            result.notes.append(f"USB scan skipped: {exc}")
            bridges = []
        for info in bridges:
            found = probe_usb_bridge(info, usb_backend, timeout)
            tty = tty_of_usb.get((info.vid, info.pid, info.serial_number))
            if found.status == "via-tty" and tty:
                found.detail = f"bound to the kernel serial driver; see {tty}"
            result.boards.append(found)
    for board in sims:
        result.boards.append(probe_sim_board(board, timeout))
    return result

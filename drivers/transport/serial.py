"""ASIC transport over a serial port (pyserial): /dev/ttyS*, /dev/ttyUSB*, /dev/ttyACM*, ptys.

A daemon reader thread drains the port as soon as bytes arrive, so chip replies are never
lost while the caller is busy, and hands them either to blocking :meth:`read` callers or,
after :meth:`subscribe`, straight into an asyncio queue (``loop.call_soon_threadsafe``).
Writes go out on the caller's thread. :meth:`set_baud` first drains pending output so the
chips' "switch baud" command leaves at the old rate.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import serial

from .base import TransportClosed, TransportError

log = logging.getLogger(__name__)

RESET_LOW_S = 0.1
RESET_HIGH_S = 0.1
_READ_POLL_S = 0.05


class SerialTransport:
    """:class:`~drivers.transport.base.Transport` over a pyserial port.

    Chip reset: ``reset_hook`` (a callable that pulses the board's reset line, e.g. a GPIO
    writer) if given; else ``reset_line`` ("rts" or "dtr") is pulled low 100 ms then high
    100 ms; else reset is a logged no-op (boards without a reset line).
    """

    def __init__(
        self,
        port: str,
        baud: int = 115_200,
        *,
        reset_hook: Callable[[], None] | None = None,
        reset_line: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if reset_line not in (None, "rts", "dtr"):
            raise ValueError("reset_line must be 'rts', 'dtr' or None")
        try:
            self._ser = serial.Serial(port, baud, timeout=_READ_POLL_S, write_timeout=2.0)
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"cannot open {port}: {exc}") from exc
        self.port = port
        self.baud = baud
        self._reset_hook = reset_hook
        self._reset_line = reset_line
        self._sleep = sleep
        self._chunks: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[bytes] | None = None
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._reader, name=f"serial-rx {port}", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------------- reader side
    def _reader(self) -> None:
        ser = self._ser
        while not self._closed:
            try:
                data = ser.read(max(1, ser.in_waiting))
            except (serial.SerialException, OSError, TypeError, ValueError) as exc:
                if not self._closed:
                    log.error("serial read on %s failed: %s", self.port, exc)
                    with self._cond:
                        self._error = exc
                        self._cond.notify_all()
                return
            if not data:
                continue
            with self._cond:
                loop, queue = self._loop, self._queue
                if loop is None or queue is None:
                    self._chunks.append(data)
                    self._cond.notify_all()
                    continue
            try:
                loop.call_soon_threadsafe(queue.put_nowait, data)
            except RuntimeError:  # loop closed: fall back to the blocking buffer
                with self._cond:
                    self._loop = self._queue = None
                    self._chunks.append(data)
                    self._cond.notify_all()

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[bytes]:
        """Deliver received bytes into an asyncio queue on ``loop`` from now on."""
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        with self._cond:
            while self._chunks:
                queue.put_nowait(self._chunks.popleft())
            self._loop, self._queue = loop, queue
        return queue

    def read(self, timeout: float) -> bytes:
        with self._cond:
            if not self._chunks and self._error is None and not self._closed and timeout > 0:
                self._cond.wait_for(
                    lambda: self._chunks or self._error is not None or self._closed, timeout
                )
            if self._chunks:
                data = b"".join(self._chunks)
                self._chunks.clear()
                return data
            if self._closed:
                raise TransportClosed(f"{self.port} is closed")
            if self._error is not None:
                raise TransportError(f"{self.port}: {self._error}")
            return b""

    # ----------------------------------------------------------------------- writer side
    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed(f"{self.port} is closed")
        if self._error is not None:
            raise TransportError(f"{self.port}: {self._error}")

    def write(self, data: bytes) -> None:
        self._check_open()
        try:
            with self._write_lock:
                self._ser.write(data)
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"write to {self.port} failed: {exc}") from exc

    def set_baud(self, baud: int) -> None:
        self._check_open()
        try:
            with self._write_lock:
                self._ser.flush()
                self._ser.baudrate = baud
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot set {self.port} to {baud} baud: {exc}") from exc
        self.baud = baud
        log.debug("%s now at %d baud", self.port, baud)

    def reset_chips(self) -> None:
        self._check_open()
        if self._reset_hook is not None:
            self._reset_hook()
            return
        if self._reset_line is None:
            log.debug("%s has no reset line; chips not reset", self.port)
            return
        try:
            setattr(self._ser, self._reset_line, True)  # asserted = line low
            self._sleep(RESET_LOW_S)
            setattr(self._ser, self._reset_line, False)
            self._sleep(RESET_HIGH_S)
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"cannot pulse {self._reset_line} on {self.port}: {exc}") from exc

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        try:
            if hasattr(self._ser, "cancel_read"):
                self._ser.cancel_read()
        except (serial.SerialException, OSError):
            pass
        self._thread.join(timeout=1.0)
        self._ser.close()

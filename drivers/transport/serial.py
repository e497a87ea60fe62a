"""ASIC transport over a serial port (pyserial): /dev/ttyS*, /dev/ttyUSB*, /dev/ttyACM*, ptys.

A daemon reader thread drains the port as soon as bytes arrive, so chip replies are never
lost while the caller is busy, and hands them either to blocking :meth:`read` callers or,
after :meth:`subscribe`, straight into an asyncio queue (``loop.call_soon_threadsafe``).
Writes go out on the caller's thread. :meth:`set_baud` first drains pending output so the
chips' "switch baud" command leaves at the old rate.

Unplug: once the port has been open, any I/O failure on it (EIO from a USB-serial
adapter that vanished, a pty whose board went away, "readiness to read but returned no
data") raises :class:`~drivers.transport.base.DeviceGone`. :meth:`SerialTransport.reopen`
then waits for the port path to exist again and opens it at the initial baud. Name the
port by a path that survives a replug (``/dev/serial/by-id/...``, the simulator's
``<id>.tty`` link): the kernel may give the returning device a different ``ttyUSB`` number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

import serial

from .base import DeviceGone, TransportClosed, TransportError

log = logging.getLogger(__name__)

RESET_LOW_S = 0.1
RESET_HIGH_S = 0.1
_READ_POLL_S = 0.05


class SerialTransport:
    """:class:`~drivers.transport.base.Transport` over a pyserial port (also ``Reopenable``).

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if reset_line not in (None, "rts", "dtr"):
            raise ValueError("reset_line must be 'rts', 'dtr' or None")
        self.port = port
        self.initial_baud = baud
        self.baud = baud
        self._reset_hook = reset_hook
        self._reset_line = reset_line
        self._sleep = sleep
        self._clock = clock
        self._chunks: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[bytes] | None = None
        self._write_lock = threading.Lock()
        self._ser: serial.Serial | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reopens = 0
        self._open()

    def _open(self) -> None:
        try:
            ser = serial.Serial(
                self.port, self.initial_baud, timeout=_READ_POLL_S, write_timeout=2.0
            )
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"cannot open {self.port}: {exc}") from exc
        self._ser = ser
        self.baud = self.initial_baud
        self._stop = stop = threading.Event()
        self._thread = threading.Thread(
            target=self._reader, args=(ser, stop), name=f"serial-rx {self.port}", daemon=True
        )
        self._thread.start()

    def _shut_port(self) -> None:
        """Stop the reader thread and close the current port (if any)."""
        self._stop.set()
        ser, thread, self._ser = self._ser, self._thread, None
        if ser is None:
            return
        with contextlib.suppress(serial.SerialException, OSError, AttributeError):
            ser.cancel_read()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        with contextlib.suppress(serial.SerialException, OSError):
            ser.close()

    # ----------------------------------------------------------------------- reader side
    def _reader(self, ser: serial.Serial, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                data = ser.read(max(1, ser.in_waiting))
            except (serial.SerialException, OSError, TypeError, ValueError) as exc:
                if not stop.is_set():
                    log.error("serial read on %s failed: %s", self.port, exc)
                    with self._cond:
                        self._error = exc
                        self._cond.notify_all()
                return
            if not data:
                continue
            with self._cond:
                if stop.is_set():
                    return
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
            self._check_open()
            return b""

    # ----------------------------------------------------------------------- writer side
    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed(f"{self.port} is closed")
        if self._error is not None:
            raise self._gone("read", self._error)
        if self._ser is None:
            raise DeviceGone(f"{self.port} is not present; call reopen()")

    def _gone(self, what: str, exc: BaseException) -> DeviceGone:
        return DeviceGone(f"{self.port} went away ({what}: {exc}); call reopen()")

    def write(self, data: bytes) -> None:
        self._check_open()
        try:
            with self._write_lock:
                self._ser.write(data)
        except serial.SerialTimeoutException as exc:
            raise TransportError(f"write to {self.port} timed out: {exc}") from exc
        except (serial.SerialException, OSError) as exc:
            raise self._gone("write", exc) from exc

    def set_baud(self, baud: int) -> None:
        self._check_open()
        try:
            with self._write_lock:
                self._ser.flush()
                self._ser.baudrate = baud
        except ValueError as exc:
            raise TransportError(f"cannot set {self.port} to {baud} baud: {exc}") from exc
        except (serial.SerialException, OSError) as exc:
            raise self._gone(f"set {baud} baud", exc) from exc
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
        self._shut_port()

    # ---------------------------------------------------------------------- unplug/replug
    def reopen(self, wait_s: float = 5.0, poll_s: float = 0.1) -> None:
        """After :class:`DeviceGone`: wait up to ``wait_s`` for the port, reopen it.

        The port comes back at the initial baud with nothing buffered; the chips behind it
        lost power, so the caller re-initialises them. Raises ``DeviceGone`` if the port
        does not return (or cannot be opened) in time.
        """
        if self._closed:
            raise TransportClosed(f"{self.port} is closed")
        self._shut_port()
        with self._cond:
            self._chunks.clear()
            self._error = None
        deadline = self._clock() + wait_s
        last: Exception | None = None
        while True:
            if os.path.exists(self.port):
                try:
                    self._open()
                except TransportError as exc:  # still settling (udev permissions, reset)
                    last = exc
                else:
                    self.reopens += 1
                    log.info("%s is back (reopened at %d baud)", self.port, self.baud)
                    return
            if self._clock() >= deadline:
                why = f": {last}" if last else ""
                raise DeviceGone(f"{self.port} did not come back within {wait_s:.1f} s{why}")
            self._sleep(poll_s)

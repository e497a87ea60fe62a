"""The byte-pipe interface every ASIC transport implements (serial, USB/FTDI, USB/CP210x, sim).

The ASIC driver only ever needs five things from the wire: push bytes out, pull whatever
bytes arrived (waiting at most ``timeout`` seconds), change the baud rate after enumeration,
pulse the chips' reset line, and let go of the device. Keeping the interface that small is
what lets one driver run over a pty, an FTDI bulk pipe or a CP210x without knowing which.

Contract (all implementations):

- ``write(data)`` sends all of ``data`` before returning (or raises ``TransportError``).
- ``read(timeout)`` returns the bytes received so far, at least one byte unless ``timeout``
  seconds pass first, in which case it returns ``b""``. It never returns partial frames
  on purpose: framing is the caller's job (the BM13xx ``ReplyDecoder`` resynchronises).
- ``set_baud(baud)`` changes the host side's rate; the caller has already told the chips.
- ``reset_chips()`` pulses the chips' reset line (low 100 ms, high 100 ms on Bitaxe-class
  boards). Transports without a reset line implement it as a logged no-op.
- ``close()`` is idempotent; after it every other call raises ``TransportClosed``.
- A device that vanishes (unplugged, powered off, port removed) raises ``DeviceGone``.
  Transports that can get it back also implement :class:`Reopenable`: ``reopen()`` waits
  for the same device to return and brings it up at the initial baud; the chips lost
  power, so the caller re-initialises them (``AsicDriver.service`` does both itself).

The methods are blocking on purpose: they are short, and asyncio callers wrap any transport
with :class:`AsyncTransport`, which runs them in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable


class TransportError(Exception):
    """The device went away or refused an operation."""


class TransportClosed(TransportError):
    """The transport was used after ``close()``."""


class DeviceGone(TransportError):
    """The device went away while in use; ``reopen()`` it, then re-initialise the chips."""


@runtime_checkable
class Transport(Protocol):
    """A bidirectional byte pipe to a chain of ASICs."""

    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float) -> bytes: ...

    def set_baud(self, baud: int) -> None: ...

    def reset_chips(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Reopenable(Protocol):
    """A transport that can wait for its unplugged device to come back."""

    def reopen(self, wait_s: float = 5.0, poll_s: float = 0.1) -> None:
        """Block up to ``wait_s`` for the device; raise ``DeviceGone`` if it stays away."""
        ...


class AsyncTransport:
    """asyncio face of any blocking :class:`Transport`: each call runs in a worker thread."""

    __slots__ = ("sync",)

    def __init__(self, transport: Transport) -> None:
        self.sync = transport

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self.sync.write, data)

    async def read(self, timeout: float) -> bytes:
        return await asyncio.to_thread(self.sync.read, timeout)

    async def set_baud(self, baud: int) -> None:
        await asyncio.to_thread(self.sync.set_baud, baud)

    async def reset_chips(self) -> None:
        await asyncio.to_thread(self.sync.reset_chips)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def reopen(self, wait_s: float = 5.0, poll_s: float = 0.1) -> None:
        if not isinstance(self.sync, Reopenable):
            raise DeviceGone(f"{type(self.sync).__name__} cannot wait for its device to return")
        await asyncio.to_thread(self.sync.reopen, wait_s, poll_s)

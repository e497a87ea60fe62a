"""An in-process byte pipe implementing the transport interface (tests, benches, in-process sims).

``memory_pipe()`` returns the host end (a :class:`~drivers.transport.base.Transport`) and
the far end (what a simulated chain reads from and writes to). The host end records every
write with a timestamp from its clock, and every baud change and reset, so latency and
bring-up sequences can be measured without a device.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from .base import TransportClosed


class _Inbox:
    __slots__ = ("_chunks", "_cond", "closed")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._cond = threading.Condition()
        self.closed = False

    def put(self, data: bytes) -> None:
        with self._cond:
            if self.closed:
                raise TransportClosed("pipe is closed")
            self._chunks.append(bytes(data))
            self._cond.notify_all()

    def take(self, timeout: float) -> bytes:
        with self._cond:
            if not self._chunks and not self.closed and timeout > 0:
                self._cond.wait_for(lambda: self._chunks or self.closed, timeout)
            if self._chunks:
                data = b"".join(self._chunks)
                self._chunks.clear()
                return data
            if self.closed:
                raise TransportClosed("pipe is closed")
            return b""

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class MemoryEndpoint:
    """The far (chip) end of a memory pipe."""

    def __init__(self, inbox: _Inbox, outbox: _Inbox) -> None:
        self._inbox, self._outbox = inbox, outbox
        self.on_reset: Callable[[], None] | None = None
        self.on_baud: Callable[[int], None] | None = None

    def write(self, data: bytes) -> None:
        self._outbox.put(data)

    def read(self, timeout: float) -> bytes:
        return self._inbox.take(timeout)


class MemoryTransport:
    """Host end of a memory pipe; see module docstring."""

    def __init__(
        self,
        inbox: _Inbox,
        outbox: _Inbox,
        peer: MemoryEndpoint,
        clock: Callable[[], float] = time.perf_counter,
        record: bool = True,
    ) -> None:
        self._inbox, self._outbox, self.peer = inbox, outbox, peer
        self.clock = clock
        self.record = record
        self.writes: list[tuple[float, bytes]] = []
        self.bauds: list[int] = []
        self.resets = 0
        self.baud = 115_200

    def write(self, data: bytes) -> None:
        self._outbox.put(data)
        if self.record:
            self.writes.append((self.clock(), bytes(data)))

    def read(self, timeout: float) -> bytes:
        return self._inbox.take(timeout)

    def set_baud(self, baud: int) -> None:
        if self._outbox.closed:
            raise TransportClosed("pipe is closed")
        self.baud = baud
        self.bauds.append(baud)
        if self.peer.on_baud is not None:
            self.peer.on_baud(baud)

    def reset_chips(self) -> None:
        if self._outbox.closed:
            raise TransportClosed("pipe is closed")
        self.resets += 1
        if self.peer.on_reset is not None:
            self.peer.on_reset()

    def close(self) -> None:
        self._inbox.close()
        self._outbox.close()


def memory_pipe(
    clock: Callable[[], float] = time.perf_counter, record: bool = True
) -> tuple[MemoryTransport, MemoryEndpoint]:
    """A connected (host transport, chip endpoint) pair."""
    to_chip, to_host = _Inbox(), _Inbox()
    peer = MemoryEndpoint(to_chip, to_host)
    return MemoryTransport(to_host, to_chip, peer, clock, record), peer

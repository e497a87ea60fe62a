"""The pipe between the share-server parent and one worker process.

Messages are pickled tuples ``(kind, *fields)``. Sending goes through one thread per pipe
end, so neither event loop ever blocks on a full pipe (a template with thousands of
transactions is megabytes) and messages keep their order whichever thread sends them.
Only our own processes are at either end: the pipe is created by the parent and inherited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["PipeEnd"]

log = logging.getLogger("blvm.stratum_v2.workers")

_STOP = object()


class PipeEnd:
    """One end of a worker pipe: ordered sends from any thread, receives on the event loop."""

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn = conn
        self.name = name
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send_loop, name=f"{name}-send", daemon=True)
        self._sender.start()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def send(self, *message: Any) -> None:
        """Queue one message; never blocks."""
        if not self.closed:
            self._outbox.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def send_pickled(self, data: bytes) -> None:
        """Queue a message pickled once for several pipes (new work to every worker)."""
        if not self.closed:
            self._outbox.put(data)

    def _send_loop(self) -> None:
        while (data := self._outbox.get()) is not _STOP:
            try:
                self.conn.send_bytes(data)  # type: ignore[arg-type]
            except (OSError, ValueError):
                return  # the other end is gone: the reader sees EOF and reports it

    def start_reading(
        self,
        loop: asyncio.AbstractEventLoop,
        on_message: Callable[[tuple[Any, ...]], None],
        on_eof: Callable[[], None],
    ) -> None:
        """Call `on_message` for each message on `loop`; `on_eof` once when the peer is gone."""
        self._loop = loop

        def readable() -> None:
            try:
                while self.conn.poll():
                    message = pickle.loads(self.conn.recv_bytes())
                    on_message(message)
                    if self.closed:
                        return
            except (EOFError, OSError):
                self.close()
                on_eof()

        loop.add_reader(self.conn.fileno(), readable)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.conn.fileno())
        self._outbox.put(_STOP)
        self._sender.join(timeout=5)
        self.conn.close()

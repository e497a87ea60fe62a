"""One peer connection over asyncio streams, driven through the sans-IO PeerProtocol.

The connection owns its socket, a bounded send queue and its timers; it hands
every admitted message to the node's handler and closes itself on protocol
violations, timeouts or a full send queue (a peer that does not read).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from protocols.bitcoin.p2p.errors import P2PError
from protocols.bitcoin.p2p.messages import (
    Message,
    NetAddr,
    Ping,
    Pong,
    SendAddrV2,
    SendHeaders,
    Verack,
    Version,
    WtxidRelay,
)
from protocols.bitcoin.p2p.peer import PeerProtocol

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 60.0
PING_INTERVAL = 120.0
PING_TIMEOUT = 20 * 60.0
IDLE_TIMEOUT = 20 * 60.0
MAX_SEND_QUEUE_BYTES = 32 * 1024 * 1024
READ_CHUNK = 256 * 1024


@dataclass(slots=True)
class PeerStats:
    connected_at: float = field(default_factory=time.time)
    last_recv: float = 0.0
    last_send: float = 0.0
    bytes_sent: int = 0
    bytes_recv: int = 0
    ping_nonce: int | None = None
    ping_sent_at: float = 0.0
    ping_ms: float | None = None


class PeerConnection:
    """A connected peer; ``run()`` returns when the connection is closed."""

    _ids = 0

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        magic: bytes,
        inbound: bool,
        our_version: Callable[[NetAddr], Version],
        handler: Callable[[PeerConnection, Message], Awaitable[None]],
    ) -> None:
        PeerConnection._ids += 1
        self.id = PeerConnection._ids
        self.reader = reader
        self.writer = writer
        self.inbound = inbound
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.host, self.port = peer[0], peer[1]
        self.protocol = PeerProtocol(magic)
        self.stats = PeerStats()
        self.send_headers = False
        self.close_reason: str | None = None
        self.banned = False
        self._our_version = our_version
        self._handler = handler
        self._queued = 0
        self._closed = asyncio.Event()
        self.handshake_done = asyncio.Event()

    @property
    def version(self) -> Version | None:
        return self.protocol.features.version

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, message: Message) -> None:
        """Queue ``message``; a peer that lets too much pile up is disconnected."""
        if self._closed.is_set():
            return
        data = self.protocol.send(message)
        self._queued += len(data)
        if self._queued > MAX_SEND_QUEUE_BYTES:
            self.close("send queue overflow (peer not reading)")
            return
        self.writer.write(data)
        self.stats.bytes_sent += len(data)
        self.stats.last_send = time.time()
        self._queued = self.writer.transport.get_write_buffer_size()

    def close(self, reason: str, *, ban: bool = False) -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self.banned = ban
        self._closed.set()
        self.writer.close()

    async def run(self) -> None:
        addr_recv = NetAddr.ipv4(self.host, self.port) if self.host.count(".") == 3 else NetAddr()
        if not self.inbound:
            self.send(self._our_version(addr_recv))
        reader_task = asyncio.create_task(self._read_loop(addr_recv))
        timer_task = asyncio.create_task(self._timers())
        try:
            await self._closed.wait()
        finally:
            for task in (reader_task, timer_task):
                task.cancel()
            for task in (reader_task, timer_task):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _read_loop(self, addr_recv: NetAddr) -> None:
        try:
            while not self._closed.is_set():
                data = await self.reader.read(READ_CHUNK)
                if not data:
                    self.close("peer closed the connection")
                    return
                self.stats.bytes_recv += len(data)
                self.stats.last_recv = time.time()
                try:
                    messages = self.protocol.receive_data(data)
                except P2PError as exc:
                    log.info("peer %s: %s: %s", self.addr, type(exc).__name__, exc)
                    self.close(f"{type(exc).__name__}: {exc}", ban=exc.score >= 100)
                    return
                for message in messages:
                    await self._dispatch(message, addr_recv)
                    if self._closed.is_set():
                        return
        except (ConnectionError, OSError) as exc:
            self.close(f"connection error: {exc}")

    async def _dispatch(self, message: Message, addr_recv: NetAddr) -> None:
        if isinstance(message, Version):
            if self.inbound:
                self.send(self._our_version(addr_recv))
            self.send(WtxidRelay())
            self.send(SendAddrV2())
            self.send(Verack())
            return
        if isinstance(message, Verack):
            self.send(SendHeaders())
            self.handshake_done.set()
        elif isinstance(message, SendHeaders):
            self.send_headers = True
            return
        elif isinstance(message, Ping):
            self.send(Pong(message.nonce))
            return
        elif isinstance(message, Pong):
            if message.nonce == self.stats.ping_nonce:
                self.stats.ping_ms = (time.time() - self.stats.ping_sent_at) * 1000
                self.stats.ping_nonce = None
            return
        await self._handler(self, message)

    async def _timers(self) -> None:
        started = time.monotonic()
        while not self._closed.is_set():
            await asyncio.sleep(1.0)
            now = time.time()
            if not self.handshake_done.is_set():
                if time.monotonic() - started > HANDSHAKE_TIMEOUT:
                    self.close("handshake timeout")
                continue
            if self.stats.ping_nonce is not None:
                if now - self.stats.ping_sent_at > PING_TIMEOUT:
                    self.close("ping timeout")
            elif now - self.stats.ping_sent_at > PING_INTERVAL:
                self.stats.ping_nonce = random.getrandbits(64)
                self.stats.ping_sent_at = now
                self.send(Ping(self.stats.ping_nonce))
            if now - max(self.stats.last_recv, self.stats.connected_at) > IDLE_TIMEOUT:
                self.close("inactivity timeout")

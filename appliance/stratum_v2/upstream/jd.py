"""Job Declaration client upstream: our node's templates, declared to a pool's JDS.

Three connections, all Noise initiators: the pool (its authority key checked), the JDS (the
same key unless `jds_authority_key` is given) and our node's template provider (the node's
key when configured). `JdSession` makes every decision; this class only moves bytes, ticks
its clock, and hands accepted work downstream through `PoolConnection`. Any failure ends
`run()` with an `UpstreamError`, so the failover moves on to the next pool, then solo.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.stratum_v2.node_link import NodeLinkError, TdClient
from appliance.stratum_v2.upstream.base import PoolConnection, UpstreamShare, UpstreamState
from appliance.stratum_v2.upstream.errors import UpstreamError
from appliance.stratum_v2.upstream.jd_session import JdSession, Peer
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.errors import ProtocolError
from protocols.sv2.keys import decode_authority_public_key
from protocols.sv2.messages.base import Message

__all__ = ["JdConfig", "JdUpstream"]

log = logging.getLogger("blvm.stratum_v2.upstream.jd")

READ_SIZE = 65536


@dataclass(slots=True)
class JdConfig:
    host: str
    port: int
    jds_host: str
    jds_port: int
    authority_key: str | None  # the pool's base58 authority key (None: not checked)
    tp_host: str
    tp_port: int
    tp_authority: bytes | None = None  # our node's TP key (x-only bytes); None: not checked
    jds_authority_key: str | None = None  # None: the pool's key
    user_identity: str = "blvm"
    nominal_hash_rate: float = 1e12
    connect_timeout: float = 10.0  # all three links set up, first token, channel open
    timeout: float = 10.0  # any request to the JDS, the pool or the TP
    tag: bytes = b"/blvm-jd/"
    tick: float = 0.5


class JdUpstream(PoolConnection):
    """One pool + JDS pair mined with our node's templates. `run()` serves until `close()`."""

    _log = log
    _protocol_errors = (ProtocolError, NodeLinkError)

    def __init__(
        self,
        config: JdConfig,
        space: int,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        super().__init__(space, name or f"jd://{config.host}:{config.port}")
        key = config.authority_key
        self.authority = decode_authority_public_key(key) if key else None
        jds_key = config.jds_authority_key or key
        self.jds_authority = decode_authority_public_key(jds_key) if jds_key else None
        self._clock = clock
        self._wall = wall_clock
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        cfg = self.config
        self.session = JdSession(
            self.space,
            cfg.user_identity,
            self._take_template_id,
            host=cfg.host,
            port=cfg.port,
            nominal_hash_rate=cfg.nominal_hash_rate,
            timeout=cfg.timeout,
            connect_timeout=cfg.connect_timeout,
            tag=cfg.tag,
            started_at=self._clock(),
            stats=self.stats,
        )
        self._links: dict[Peer, TdClient] = {}

    # interface --------------------------------------------------------------------------

    def submit_share(self, share: UpstreamShare) -> bool:
        live = self._templates.get(share.template_id)
        if live is None or not self.session.setup_done:
            return False
        sent = self.session.submit_share(live, share)
        self._flush()
        return sent

    async def close(self) -> None:
        self.state = UpstreamState.CLOSED
        for link in list(self._links.values()):
            await link.close()

    # links ------------------------------------------------------------------------------

    async def _open(self, host: str, port: int, key: bytes | None) -> TdClient:
        reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
        conn = Sv2Connection.initiator(key, now=int(self._wall()))
        writer.write(conn.initiate())
        return TdClient(reader, writer, conn)

    async def _serve(self) -> None:
        cfg = self.config
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                pool = await self._open(cfg.host, cfg.port, self.authority)
                self._links[Peer.POOL] = pool
                self._writer = pool.writer  # the base class's "connected" marker
                self._links[Peer.JDS] = await self._open(
                    cfg.jds_host, cfg.jds_port, self.jds_authority
                )
                # Templates only after the first token says how large the pool's outputs are.
                self._links[Peer.TP] = await TdClient.connect(
                    cfg.tp_port,
                    cfg.tp_authority,
                    host=cfg.tp_host,
                    constraints=None,
                    vendor="blvm-jd-client",
                    timeout=cfg.connect_timeout,
                )
            self.session.on_connected(Peer.TP, self._clock())
            self._flush()
            tasks = [asyncio.create_task(self._pump(peer)) for peer in self._links]
            tasks.append(asyncio.create_task(self._ticker()))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            links, self._links = self._links, {}
            self._writer = None
            for link in links.values():
                await link.close()

    async def _pump(self, peer: Peer) -> None:
        link = self._links[peer]
        while (event := await link.next(None)) is not None:
            now = self._clock()
            try:
                if isinstance(event, HandshakeComplete):
                    self.session.on_connected(peer, now)
                else:
                    self.session.on_message(peer, event, now)
            except UpstreamError as exc:
                raise type(exc)(f"{self.name}: {exc}") from None
            finally:
                self._flush()
        if self.state is not UpstreamState.CLOSED:
            raise UpstreamError(f"{self.name}: the {peer.value} closed the connection")

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick)
            try:
                self.session.check(self._clock())
            except UpstreamError as exc:
                raise type(exc)(f"{self.name}: {exc}") from None

    def _flush(self) -> None:
        """Send what the session queued and hand accepted work downstream."""
        session = self.session
        outbox, session.outbox = session.outbox, []
        for peer, message in outbox:
            self._send(peer, message)
        ready, session.ready = session.ready, []
        for work, live in ready:
            log.info(
                "%s: template %d declared, pool job %d",
                self.name,
                live.job.template_id,
                live.job_id,
            )
            self._deliver(work, live)

    def _send(self, peer: Peer, message: Message) -> None:
        link = self._links.get(peer)
        if link is not None:
            link.send(message)

    def status(self) -> dict[str, object]:
        s = self.session
        return {"blocks": s.blocks, "setup_done": s.setup_done, **self.stats.to_dict()}

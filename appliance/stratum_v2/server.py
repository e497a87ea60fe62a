"""asyncio SV2 listener for LAN miners: Noise, channels, jobs, shares, vardiff, statistics.

Thin glue over the sans-IO layers: `protocols.sv2.Sv2Connection` does the bytes, `jobs`,
`shares` and `vardiff` do the decisions; this module owns the sockets and the clock.

- A peer's malformed bytes raise `ProtocolError` in its own session only: that connection is
  closed with the reason logged, every other one keeps mining.
- Accepted shares are acknowledged in batches (every `ack_batch` shares or `ack_interval`
  seconds per channel); errors go at once, one per bad share.
- New work (from the `TemplateSource`, possibly on another thread) is broadcast on the event
  loop; `last_broadcast` records how long queuing it to every channel took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.stratum_v2.errors import ShareError
from appliance.stratum_v2.jd_jobs import CustomJobError, check_custom_job, work_from_custom_job
from appliance.stratum_v2.jd_tokens import JobTokenRegistry
from appliance.stratum_v2.jobs import (
    CHANNEL_PREFIX_SIZE,
    ChannelJobs,
    ChannelKind,
    GroupChannel,
    WorkTemplate,
)
from appliance.stratum_v2.peer_session import READ_SIZE, ClosePeer, PeerSession
from appliance.stratum_v2.shares import Channel, WorkerStats, validate_share
from appliance.stratum_v2.source import TemplateSource
from appliance.stratum_v2.sv1_listener import Sv1Session
from appliance.stratum_v2.upstream.base import UpstreamShare
from appliance.stratum_v2.vardiff import MAX_TARGET, Vardiff
from protocols.bitcoin.block import Block
from protocols.sv2.connection import HandshakeComplete, Sv2Connection, UnknownMessage
from protocols.sv2.messages import (
    CloseChannel,
    MiningClientFlags,
    MiningServerFlags,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    Protocol,
    RequestExtensions,
    RequestExtensionsSuccess,
    SetCustomMiningJob,
    SetCustomMiningJobError,
    SetCustomMiningJobSuccess,
    SetTarget,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesStandard,
    SubmitSharesSuccess,
    UpdateChannel,
)
from protocols.sv2.messages.base import Message
from protocols.sv2.messages.extensions import WORKER_HASHRATE_TRACKING, user_identity_from_tlvs
from protocols.sv2.noise import Certificate

__all__ = ["ShareSink", "Sv2Server", "Sv2ServerConfig"]

log = logging.getLogger("blvm.stratum_v2.server")

#: Receives every accepted share (its template id, full extranonce, ...), on the event loop.
ShareSink = Callable[[UpstreamShare], None]

PROTOCOL_VERSION = 2
SUPPORTED_EXTENSIONS = frozenset({WORKER_HASHRATE_TRACKING})
_SHARE_TYPES = frozenset({SubmitSharesStandard, SubmitSharesExtended})


@dataclass(slots=True)
class Sv2ServerConfig:
    host: str = "0.0.0.0"
    port: int = 34255
    shares_per_minute: float = 6.0
    vardiff_interval: float = 60.0
    ack_batch: int = 16
    ack_interval: float = 0.5
    handshake_timeout: float = 15.0
    max_channels_per_connection: int = 256
    max_write_buffer: int = 4 << 20  # a reader this far behind is cut off
    refresh_interval: float = 30.0  # re-issue work: mempool changes, fresh ntime
    sv1_port: int | None = None  # SV1 listener for LAN miners (None: off)
    sv1_host: str | None = None  # SV1 listen address (None: same as `host`)
    sv1_initial_hashrate: float = 1e12  # SV1 has no nominal hash rate: assume ~1 TH/s
    reuse_port: bool = False  # SO_REUSEPORT: worker processes share the ports
    channel_id_first: int = 1  # channel ids first, first + step, ...: unique across workers
    channel_id_step: int = 1


@dataclass(slots=True)
class _PendingAck:
    last_sequence: int = 0
    count: int = 0
    shares_sum: float = 0.0


@dataclass(slots=True)
class ServerCounters:
    connections: int = 0
    connections_total: int = 0
    closed_protocol_error: int = 0
    shares_accepted: int = 0
    shares_rejected: int = 0
    blocks_found: int = 0
    blocks_accepted: int = 0
    custom_jobs: int = 0  # SetCustomMiningJob accepted
    custom_jobs_refused: int = 0
    last_broadcast: float = 0.0  # seconds to queue the latest work to every channel
    templates: int = 0
    block_results: list[str | None] = field(default_factory=list)


class _Session(PeerSession):
    """One downstream connection."""

    kind = "SV2 miner"
    timeout_reason = "no SetupConnection within the handshake timeout"
    log = log

    def __init__(
        self,
        server: Sv2Server,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(reader, writer, server.config.handshake_timeout)
        self.server = server
        self.conn = Sv2Connection.responder(server.static_secret, server.certificate)
        self.setup: SetupConnection | None = None
        self.channels: dict[int, Channel] = {}
        self.acks: dict[int, _PendingAck] = {}
        self.ack_batch = server.config.ack_batch
        self.group_channel_id = 0
        self.group: GroupChannel | None = None  # standard channels share jobs via the group
        #: A JD client (REQUIRES_WORK_SELECTION): it mines only its own declared jobs, set with
        #: SetCustomMiningJob, so it gets none of ours.
        self.custom_work = False
        self.closed = False

    # io -----------------------------------------------------------------------------------

    def write(self, message: Message) -> None:
        if self.closed:
            return
        self.writer.write(self.conn.send(message))

    def write_many(self, messages: list[Message]) -> None:
        if self.closed:
            return
        self.writer.write(b"".join(self.conn.send(m) for m in messages))

    def handshaking(self) -> bool:
        return self.setup is None

    def on_data(self, data: bytes) -> None:
        reply = self.conn.receive_data(data)
        if reply:
            self.writer.write(reply)
        for event in self.conn.events():
            self.handle(event)

    def on_protocol_error(self, exc: Exception) -> None:
        self.server.counters.closed_protocol_error += 1

    def close(self) -> None:
        if self.closed:
            return
        self.flush_acks()
        self.closed = True
        self.writer.close()

    # dispatch -----------------------------------------------------------------------------

    def handle(self, event: object) -> None:
        if type(event) in _SHARE_TYPES and self.setup is not None:  # the hot path first
            self.on_share(event)  # type: ignore[arg-type]
            return
        if isinstance(event, HandshakeComplete):
            return
        if isinstance(event, SetupConnection):
            self.on_setup(event)
            return
        if self.setup is None:
            raise ClosePeer(f"{type(event).__name__} before SetupConnection")
        if isinstance(event, SubmitSharesStandard | SubmitSharesExtended):
            self.on_share(event)
        elif isinstance(event, OpenStandardMiningChannel | OpenExtendedMiningChannel):
            self.on_open(event)
        elif isinstance(event, UpdateChannel):
            self.on_update(event)
        elif isinstance(event, RequestExtensions):
            self.on_request_extensions(event)
        elif isinstance(event, SetCustomMiningJob):
            self.on_custom_job(event)
        elif isinstance(event, CloseChannel):
            if self.group is not None:
                self.group.remove(event.channel_id)
            self.acks.pop(event.channel_id, None)
            self.channels.pop(event.channel_id, None)
        elif isinstance(event, UnknownMessage):
            log.debug("%s: ignoring unknown message %s", self.peer, event.header)
        else:
            log.debug("%s: ignoring %s", self.peer, type(event).__name__)

    def on_setup(self, msg: SetupConnection) -> None:
        if self.setup is not None:
            raise ClosePeer("second SetupConnection")
        if msg.protocol != Protocol.MINING:
            self.write(SetupConnectionError(0, "unsupported-protocol"))
            raise ClosePeer(f"protocol {msg.protocol} is not Mining")
        if not msg.min_version <= PROTOCOL_VERSION <= msg.max_version:
            self.write(SetupConnectionError(0, "protocol-version-mismatch"))
            raise ClosePeer(f"versions {msg.min_version}..{msg.max_version} exclude 2")
        flags = 0
        if msg.flags & MiningClientFlags.REQUIRES_WORK_SELECTION:
            if self.server.job_tokens is None:
                self.write(
                    SetupConnectionError(
                        MiningClientFlags.REQUIRES_WORK_SELECTION, "unsupported-feature-flags"
                    )
                )
                raise ClosePeer("work selection asked, but no Job Declaration Server runs")
            self.custom_work = True
            flags = MiningServerFlags.REQUIRES_EXTENDED_CHANNELS
        self.setup = msg
        self.group_channel_id = self.server.allocate_channel_id()
        if not msg.flags & MiningClientFlags.REQUIRES_STANDARD_JOBS and not self.custom_work:
            self.group = GroupChannel(self.group_channel_id)
        self.write(SetupConnectionSuccess(PROTOCOL_VERSION, int(flags)))
        log.info(
            "%s: SetupConnection from %r %r %r, flags 0x%x",
            self.peer,
            msg.vendor,
            msg.hardware_version,
            msg.device_id,
            msg.flags,
        )

    def on_request_extensions(self, msg: RequestExtensions) -> None:
        # Worker-specific hashrate tracking: shares name their worker in a TLV, which feeds
        # the per-worker statistics. Nothing else is supported.
        supported = tuple(e for e in msg.requested_extensions if e in SUPPORTED_EXTENSIONS)
        self.write(RequestExtensionsSuccess(msg.request_id, supported))
        self.conn.negotiated_extensions.update(supported)

    def on_open(self, msg: OpenStandardMiningChannel | OpenExtendedMiningChannel) -> None:
        server = self.server
        if len(self.channels) >= server.config.max_channels_per_connection:
            self.write(OpenMiningChannelError(msg.request_id, "max-channels-reached"))
            return
        space = server.source.extranonce_size
        extended = isinstance(msg, OpenExtendedMiningChannel)
        if extended and msg.min_extranonce_size > space - CHANNEL_PREFIX_SIZE:
            self.write(OpenMiningChannelError(msg.request_id, "min-extranonce-size-too-large"))
            return
        channel_id = server.allocate_channel_id()
        unique = channel_id.to_bytes(CHANNEL_PREFIX_SIZE, "big")
        if extended:
            kind, prefix = ChannelKind.EXTENDED, unique
        else:
            kind, prefix = ChannelKind.STANDARD, unique + bytes(space - CHANNEL_PREFIX_SIZE)
        max_target = int.from_bytes(msg.max_target, "little") or MAX_TARGET
        vardiff = Vardiff.start(
            msg.nominal_hash_rate,
            server.config.shares_per_minute,
            server.clock(),
            max_target=max_target,
            interval=server.config.vardiff_interval,
        )
        channel = Channel(
            channel_id,
            msg.user_identity,
            ChannelJobs(channel_id, kind, prefix),
            vardiff,
            server.worker(msg.user_identity),
        )
        self.channels[channel_id] = channel
        target = vardiff.target.to_bytes(32, "little")
        if extended:
            self.write(
                OpenExtendedMiningChannelSuccess(
                    msg.request_id,
                    channel_id,
                    target,
                    space - CHANNEL_PREFIX_SIZE,
                    prefix,
                    0,  # extended channels get their own jobs: no group
                )
            )
        else:
            self.write(
                OpenStandardMiningChannelSuccess(
                    msg.request_id, channel_id, target, prefix, self.group_channel_id
                )
            )
        log.info(
            "%s: %s channel %d for %r, %.3g H/s, target %064x",
            self.peer,
            kind.value,
            channel_id,
            msg.user_identity,
            msg.nominal_hash_rate,
            vardiff.target,
        )
        if self.custom_work:
            return  # its jobs come from SetCustomMiningJob
        if self.group is not None and kind is ChannelKind.STANDARD:
            self.write_many(self.group.add(channel.jobs, server.work))
        elif server.work is not None:
            self.write_many(channel.jobs.new_job(server.work))

    def on_custom_job(self, msg: SetCustomMiningJob) -> None:
        """A job declared at our JDS, now mined on one of this client's extended channels."""
        tokens = self.server.job_tokens
        channel = self.channels.get(msg.channel_id)
        error: CustomJobError | None = None
        job = tokens.declared(msg.mining_job_token) if tokens is not None else None
        space = self.server.source.extranonce_size
        if tokens is None or not self.custom_work:
            error = CustomJobError.JD_NOT_SUPPORTED
        elif channel is None or channel.kind is not ChannelKind.EXTENDED:
            error = CustomJobError.INVALID_CHANNEL_ID
        elif job is None or job.claimed:
            error = CustomJobError.INVALID_TOKEN
        else:
            error = check_custom_job(job, msg, space)
        if error is not None:
            log.info("%s: SetCustomMiningJob %d refused: %s", self.peer, msg.request_id, error)
            self.server.counters.custom_jobs_refused += 1
            self.write(SetCustomMiningJobError(msg.channel_id, msg.request_id, str(error)))
            return
        assert job is not None and channel is not None
        job.claimed = True
        work = work_from_custom_job(job, msg, space, self.server.next_custom_template_id())
        # The announcement is not sent: the client built the job and learns its id below.
        announce = channel.jobs.new_job(work)
        job_id = announce[0].job_id
        channel.forget_retired()
        self.server.counters.custom_jobs += 1
        self.write(SetCustomMiningJobSuccess(msg.channel_id, msg.request_id, job_id))
        log.info(
            "%s: custom job %d on channel %d (%d transactions)",
            self.peer,
            job_id,
            msg.channel_id,
            len(job.txs),
        )

    def on_update(self, msg: UpdateChannel) -> None:
        channel = self.channels.get(msg.channel_id)
        if channel is None:
            return
        max_target = int.from_bytes(msg.maximum_target, "little") or MAX_TARGET
        old = channel.vardiff
        channel.vardiff = Vardiff.start(
            msg.nominal_hash_rate,
            old.shares_per_minute,
            self.server.clock(),
            max_target=max_target,
            interval=old.interval,
        )
        if channel.vardiff.target != old.target:
            self.set_target(channel)

    def on_share(self, share: SubmitSharesStandard | SubmitSharesExtended) -> None:
        server = self.server
        counters = server.counters
        channel_id = share.channel_id
        channel = self.channels.get(channel_id)
        if channel is None:
            counters.shares_rejected += 1
            self.write(
                SubmitSharesError(channel_id, share.sequence_number, ShareError.INVALID_CHANNEL_ID)
            )
            return
        result = validate_share(channel, share)
        stats = channel.stats
        if self.conn.negotiated_extensions and share.tlvs:
            worker_name = user_identity_from_tlvs(share.tlvs)
            if worker_name:
                stats = server.worker(worker_name)
        if result.is_block:
            counters.blocks_found += 1
            stats.blocks_found += 1
            if result.block is not None:
                server.submit_block(result.block, declared=self.custom_work)
        if result.error is not None:
            counters.shares_rejected += 1
            stats.rejected[result.error] = stats.rejected.get(result.error, 0) + 1
            log.debug("%s: share rejected (%s): %s", self.peer, result.error, share)
            self.write(SubmitSharesError(channel_id, share.sequence_number, str(result.error)))
            return
        counters.shares_accepted += 1
        if server.share_sink is not None:
            server.forward_share(channel, share, result)
        credited = result.difficulty
        stats.accepted += 1
        stats.shares_sum += credited
        stats.last_share_time = time.time()
        if result.hash_difficulty > stats.best_difficulty:
            stats.best_difficulty = result.hash_difficulty
        ack = self.acks.get(channel_id)
        if ack is None:
            ack = self.acks[channel_id] = _PendingAck()
        ack.last_sequence = share.sequence_number
        ack.shares_sum += credited
        ack.count = count = ack.count + 1
        if count >= self.ack_batch:
            self.flush_ack(channel_id)
        if channel.vardiff.on_share(server.clock()) is not None:
            self.set_target(channel)

    # acks, targets, jobs ------------------------------------------------------------------

    def flush_ack(self, channel_id: int) -> None:
        ack = self.acks.pop(channel_id, None)
        if ack is None or not ack.count:
            return
        total = min(round(ack.shares_sum), (1 << 64) - 1)
        self.write(SubmitSharesSuccess(channel_id, ack.last_sequence, ack.count, total))

    def flush_acks(self) -> None:
        for channel_id in list(self.acks):
            self.flush_ack(channel_id)

    def set_target(self, channel: Channel) -> None:
        # Acknowledge what was mined at the old target before announcing the new one.
        self.flush_ack(channel.channel_id)
        target = channel.vardiff.target
        self.write(SetTarget(channel.channel_id, target.to_bytes(32, "little")))
        log.debug("channel %d: new target %064x", channel.channel_id, target)

    def poll_vardiff(self, now: float) -> None:
        for channel in self.channels.values():
            if channel.vardiff.poll(now) is not None:
                self.set_target(channel)

    def push_work(self, work: WorkTemplate) -> None:
        if self.closed or self.custom_work:
            return
        messages: list[Message] = []
        group = self.group
        if group is not None:
            messages += group.new_job(work)
        for channel in self.channels.values():
            if group is None or channel.channel_id not in group.members:
                messages += channel.jobs.new_job(work)
            channel.forget_retired()
        if messages:
            self.write_many(messages)
        buffered = self.writer.transport.get_write_buffer_size()
        if buffered > self.server.config.max_write_buffer:
            log.warning("closing %s: %d bytes unread, peer too slow", self.peer, buffered)
            self.writer.transport.abort()
            self.closed = True


class Sv2Server:
    """The downstream SV2 listener. `await start()`, then `await close()`."""

    def __init__(
        self,
        source: TemplateSource,
        static_secret: bytes,
        certificate: Certificate,
        config: Sv2ServerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        share_sink: ShareSink | None = None,
        job_tokens: JobTokenRegistry | None = None,
    ) -> None:
        self.source = source
        #: Tokens of jobs declared at our JDS; None: SetCustomMiningJob is not supported.
        self.job_tokens = job_tokens
        self._next_custom_id = 1 << 63  # custom work ids apart from the source's
        #: Called with every accepted share (an upstream pool client forwards them).
        self.share_sink = share_sink
        self.static_secret = static_secret
        self.certificate = certificate
        self.config = config or Sv2ServerConfig()
        self.clock = clock
        self.counters = ServerCounters()
        self.work: WorkTemplate | None = None
        self.workers: dict[str, WorkerStats] = {}
        self.sessions: set[_Session | Sv1Session] = set()
        self.port = 0
        self.sv1_port = 0
        self._sv1_server: asyncio.Server | None = None
        self._next_channel_id = self.config.channel_id_first
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    # lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.source.subscribe(self._on_work_threadsafe)
        self.work = await asyncio.to_thread(self.source.current)
        reuse = self.config.reuse_port or None
        self._server = await asyncio.start_server(
            self._on_connect, self.config.host, self.config.port, limit=READ_SIZE, reuse_port=reuse
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.config.sv1_port is not None:
            sv1_host = self.config.sv1_host or self.config.host
            self._sv1_server = await asyncio.start_server(
                self._on_connect_sv1,
                sv1_host,
                self.config.sv1_port,
                limit=READ_SIZE,
                reuse_port=reuse,
            )
            self.sv1_port = self._sv1_server.sockets[0].getsockname()[1]
            log.info("SV1 listener on %s:%d", sv1_host, self.sv1_port)
        self._spawn(self._ticker())
        log.info("SV2 listener on %s:%d", self.config.host, self.port)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for listener in (self._server, self._sv1_server):
            if listener is not None:
                listener.close()
        for session in list(self.sessions):
            session.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for listener in (self._server, self._sv1_server):
            if listener is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(listener.wait_closed(), 5)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _ticker(self) -> None:
        """Periodic duties: flush batched acks, vardiff polls, template refresh."""
        interval = self.config.ack_interval
        last_refresh = self.clock()
        while True:
            await asyncio.sleep(interval)
            now = self.clock()
            for session in list(self.sessions):
                session.flush_acks()
                session.poll_vardiff(now)
            if now - last_refresh >= self.config.refresh_interval:
                last_refresh = now
                self._spawn(asyncio.to_thread(self.source.refresh, True))

    # connections --------------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        self.sessions.add(session)
        self.counters.connections += 1
        self.counters.connections_total += 1
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self.counters.connections -= 1

    async def _on_connect_sv1(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        session = Sv1Session(self, reader, writer)
        self.sessions.add(session)
        self.counters.connections += 1
        self.counters.connections_total += 1
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self.counters.connections -= 1

    def allocate_channel_id(self) -> int:
        channel_id = self._next_channel_id
        if channel_id > 0xFFFFFFFF:
            raise ClosePeer("channel ids exhausted; restart the module")
        self._next_channel_id += self.config.channel_id_step
        return channel_id

    def worker(self, user_identity: str) -> WorkerStats:
        stats = self.workers.get(user_identity)
        if stats is None:
            stats = self.workers[user_identity] = WorkerStats(user_identity)
        return stats

    # work and blocks ----------------------------------------------------------------------

    def _on_work_threadsafe(self, work: WorkTemplate) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self.broadcast, work)

    def broadcast(self, work: WorkTemplate) -> None:
        """Send `work` to every channel (clean jobs when the prev_hash changed)."""
        started = time.perf_counter()
        self.work = work
        self.counters.templates += 1
        for session in list(self.sessions):
            session.push_work(work)
        self.counters.last_broadcast = time.perf_counter() - started

    def forward_share(
        self, channel: Channel, share: SubmitSharesStandard | SubmitSharesExtended, result: Any
    ) -> None:
        """Hand an accepted share to `share_sink` (an upstream pool) in its template's terms."""
        sink = self.share_sink
        if sink is None or result.job is None:
            return
        extranonce = channel.jobs.extranonce_prefix + bytes(getattr(share, "extranonce", b""))
        sink(
            UpstreamShare(
                result.job.work.template_id,
                extranonce,
                share.version,
                share.ntime,
                share.nonce,
                result.hash_value,
            )
        )

    def next_custom_template_id(self) -> int:
        self._next_custom_id += 1
        return self._next_custom_id

    def submit_block(self, block: Block, declared: bool = False) -> None:
        """Hand a block on: a declared job's goes to the node through the JDS."""
        log.info("share meets the network target: submitting block %s", block.hash_hex)
        self._spawn(self._submit(block, declared))

    async def _submit(self, block: Block, declared: bool = False) -> None:
        sink = self.job_tokens.block_sink if self.job_tokens is not None else None
        if declared and sink is not None:
            reason = await sink(block)
        elif declared:
            reason = "no-block-sink"
        else:
            reason = await asyncio.to_thread(self.source.submit_block, block)
        self.counters.block_results.append(reason)
        if reason is None:
            self.counters.blocks_accepted += 1

    # status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        c = self.counters
        return {
            "port": self.port,
            "sv1_port": self.sv1_port or None,
            "connections": c.connections,
            "connections_total": c.connections_total,
            "closed_protocol_error": c.closed_protocol_error,
            "channels": sum(len(s.channels) for s in self.sessions),
            "shares_accepted": c.shares_accepted,
            "shares_rejected": c.shares_rejected,
            "blocks_found": c.blocks_found,
            "blocks_accepted": c.blocks_accepted,
            "custom_jobs": c.custom_jobs,
            "custom_jobs_refused": c.custom_jobs_refused,
            "templates": c.templates,
            "last_broadcast_seconds": c.last_broadcast,
            "workers": {name: w.to_dict() for name, w in self.workers.items()},
        }

"""SV1 listener for LAN miners that only speak Stratum V1 (Bitaxe, S9, ...).

Each SV1 connection is treated as one extended channel: extranonce1 is the channel's slice
of the template's extranonce space, extranonce2 the miner's; jobs are the same
`ChannelJobs` the SV2 side uses, so shares go through the very same `validate_share` (SRI's
order) and blocks through the same path. SV1 has no batching: every submit is answered, but
the answers to one received chunk go out in one write.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from appliance.stratum_v2.errors import ShareError
from appliance.stratum_v2.jobs import CHANNEL_PREFIX_SIZE, ChannelJobs, ChannelKind, WorkTemplate
from appliance.stratum_v2.peer_session import PeerSession
from appliance.stratum_v2.shares import Channel, ExtendedShare, WorkerStats, validate_share
from appliance.stratum_v2.vardiff import Vardiff, difficulty
from protocols.stratum_v1 import events as ev
from protocols.stratum_v1.connection import ServerConnection
from protocols.stratum_v1.errors import ErrorCode
from protocols.stratum_v1.work import apply_version_bits, difficulty_to_target, version_bits_allowed
from protocols.sv2.messages import NewExtendedMiningJob, SetNewPrevHash

if TYPE_CHECKING:
    from appliance.stratum_v2.server import Sv2Server

__all__ = ["SV1_EXTRANONCE2_SIZE", "SV1_VERSION_MASK", "Sv1Session"]

log = logging.getLogger("blvm.stratum_v2.sv1")

#: extranonce2 bytes SV1 miners get (what common ASIC firmware expects).
SV1_EXTRANONCE2_SIZE = 8
#: BIP320 mask: what SV1 ASICs negotiate through mining.configure.
SV1_VERSION_MASK = 0x1FFFE000

_SV1_CODES = {
    ShareError.STALE_SHARE: ErrorCode.JOB_NOT_FOUND,
    ShareError.INVALID_JOB_ID: ErrorCode.JOB_NOT_FOUND,
    ShareError.DUPLICATE_SHARE: ErrorCode.DUPLICATE_SHARE,
    ShareError.DIFFICULTY_TOO_LOW: ErrorCode.LOW_DIFFICULTY_SHARE,
}


def exact_difficulty_target(target: int) -> tuple[float, int]:
    """The SV1 difficulty for a target, and the target the miner will derive back from it."""
    diff = max(difficulty(target), 1e-12)
    return diff, difficulty_to_target(diff)


class Sv1Session(PeerSession):
    """One SV1 miner connection, served as one extended channel."""

    kind = "SV1 miner"
    timeout_reason = "not subscribed within the handshake timeout"
    log = log

    def __init__(
        self, server: Sv2Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(reader, writer, server.config.handshake_timeout)
        self.server = server
        self.conn = ServerConnection()
        self.channels: dict[int, Channel] = {}
        self.channel: Channel | None = None
        self.closed = False
        self.sequence = 0
        self.job_targets: dict[int, int] = {}  # target in force when each job was notified
        # Answers to one received chunk, written together: one send per chunk, not per submit.
        self._batch: list[bytes] | None = None

    # io -----------------------------------------------------------------------------------

    def write(self, event: Any) -> None:
        if not self.closed:
            self.write_bytes(self.conn.send(event))

    def write_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        if self._batch is not None:
            self._batch.append(data)
        else:
            self.writer.write(data)

    def handle_chunk(self, events: list[Any]) -> None:
        """Handle the events of one read; their answers leave in a single write, in order."""
        batch = self._batch = []
        try:
            for event in events:
                self.handle(event)
        finally:
            self._batch = None
            if batch and not self.closed:
                self.writer.write(b"".join(batch))

    def handshaking(self) -> bool:
        return self.channel is None

    def on_data(self, data: bytes) -> None:
        self.handle_chunk(self.conn.receive_data(data))

    def on_protocol_error(self, exc: Exception) -> None:
        self.server.counters.closed_protocol_error += 1

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    # requests -----------------------------------------------------------------------------

    def handle(self, event: object) -> None:
        if type(event) is ev.Submit:  # the hot path first
            self.on_submit(event)
        elif isinstance(event, ev.Configure):
            self.write(self.conn.configure_result(event, SV1_VERSION_MASK))
        elif isinstance(event, ev.Subscribe):
            self.on_subscribe(event)
        elif isinstance(event, ev.Authorize):
            self.write(ev.AuthorizeResult(event.req_id, True))
            if self.channel is not None:
                self.channel.user_identity = event.username
                self.channel.stats = self.server.worker(event.username)
                self.send_difficulty()
                if self.server.work is not None:
                    self.push_work(self.server.work)
        elif isinstance(event, ev.SuggestDifficulty):
            self.write(ev.Ack(event.req_id))
            if self.channel is not None and event.difficulty > 0:
                self.channel.vardiff.target = min(
                    difficulty_to_target(event.difficulty), self.channel.vardiff.max_target
                )
                self.send_difficulty()
        elif isinstance(event, ev.ExtranonceSubscribe):
            self.write(ev.Ack(event.req_id))
        elif isinstance(event, ev.Submit):
            self.on_submit(event)
        elif isinstance(event, ev.UnknownMethod) and event.req_id is not None:
            self.write(ServerConnection.error(event.req_id, ErrorCode.OTHER, "unknown method"))

    def on_subscribe(self, event: ev.Subscribe) -> None:
        if self.channel is not None:
            self.write(ServerConnection.error(event.req_id, ErrorCode.OTHER, "already subscribed"))
            return
        server = self.server
        space = server.source.extranonce_size
        channel_id = server.allocate_channel_id()
        prefix_len = space - SV1_EXTRANONCE2_SIZE
        extranonce1 = channel_id.to_bytes(CHANNEL_PREFIX_SIZE, "big") + bytes(
            prefix_len - CHANNEL_PREFIX_SIZE
        )
        vardiff = Vardiff.start(
            server.config.sv1_initial_hashrate,
            server.config.shares_per_minute,
            server.clock(),
            interval=server.config.vardiff_interval,
        )
        self.channel = Channel(
            channel_id,
            event.user_agent or "sv1",
            ChannelJobs(channel_id, ChannelKind.EXTENDED, extranonce1),
            vardiff,
            WorkerStats(event.user_agent or "sv1"),  # registered under the authorized name
        )
        self.channels[channel_id] = self.channel
        self.write(ev.SubscribeResult(event.req_id, extranonce1, SV1_EXTRANONCE2_SIZE))
        log.info("SV1 %s subscribed (%s) as channel %d", self.peer, event.user_agent, channel_id)

    def send_difficulty(self) -> None:
        channel = self.channel
        assert channel is not None
        diff, exact = exact_difficulty_target(channel.vardiff.target)
        channel.vardiff.target = exact
        self.write(ev.SetDifficulty(diff))

    def on_submit(self, submit: ev.Submit) -> None:
        server = self.server
        counters = server.counters
        channel = self.channel
        code = self.conn.check_submit(submit)
        if code is None and channel is None:
            code = ErrorCode.NOT_SUBSCRIBED
        if code is not None or channel is None:
            counters.shares_rejected += 1
            self.write(ServerConnection.reject(submit.req_id, code or ErrorCode.OTHER))
            return
        try:
            job_id = int(submit.job_id, 16)
        except ValueError:
            job_id = -1
        job = channel.jobs.live.get(job_id)
        version = 0 if job is None else job.version
        if submit.version_bits is not None:
            mask = self.conn.version_mask or 0
            if not version_bits_allowed(submit.version_bits, mask, version):
                counters.shares_rejected += 1
                self.write(ServerConnection.reject(submit.req_id, ErrorCode.OTHER, "bad version"))
                return
            version = apply_version_bits(version, submit.version_bits, mask)
        self.sequence += 1
        if not 0 <= job_id <= 0xFFFFFFFF:
            job_id = 0
        share = ExtendedShare(
            channel.channel_id,
            self.sequence,
            job_id,
            submit.nonce,
            submit.ntime,
            version,
            submit.extranonce2,
        )
        result = validate_share(channel, share, self.job_targets.get(job_id))
        stats = channel.stats
        if result.is_block:
            counters.blocks_found += 1
            stats.blocks_found += 1
            if result.block is not None:
                server.submit_block(result.block)
        if result.error is not None:
            counters.shares_rejected += 1
            stats.rejected[result.error] = stats.rejected.get(result.error, 0) + 1
            sv1_code = _SV1_CODES.get(result.error, ErrorCode.OTHER)
            self.write(ServerConnection.reject(submit.req_id, sv1_code, str(result.error)))
            return
        counters.shares_accepted += 1
        if server.share_sink is not None:
            server.forward_share(channel, share, result)
        stats.accepted += 1
        stats.shares_sum += result.difficulty
        if result.hash_difficulty > stats.best_difficulty:
            stats.best_difficulty = result.hash_difficulty
        self.write_bytes(self.conn.accept_share(submit.req_id))
        if channel.vardiff.on_share(server.clock()) is not None:
            self.retarget()

    def retarget(self) -> None:
        """New difficulty, then a new job: SV1 miners apply it from the next notify."""
        self.send_difficulty()
        if self.server.work is not None:
            self.push_work(self.server.work)

    # server duties ------------------------------------------------------------------------

    def flush_acks(self) -> None:
        """SV1 answers every submit at once: nothing to flush."""

    def poll_vardiff(self, now: float) -> None:
        if self.channel is not None and self.channel.vardiff.poll(now) is not None:
            self.retarget()

    def push_work(self, work: WorkTemplate) -> None:
        channel = self.channel
        if self.closed or channel is None or not self.conn.authorized_workers:
            return
        messages = channel.jobs.new_job(work)
        channel.forget_retired()
        job = messages[0]
        assert isinstance(job, NewExtendedMiningJob)
        live = channel.jobs.live
        self.job_targets = {j: t for j, t in self.job_targets.items() if j in live}
        self.job_targets[job.job_id] = channel.vardiff.target
        clean = any(isinstance(m, SetNewPrevHash) for m in messages)
        self.write(
            ev.Notify(
                job_id=f"{job.job_id:x}",
                prevhash=work.prev_hash,
                coinb1=work.coinbase_prefix,
                coinb2=work.coinbase_suffix,
                merkle_branch=work.merkle_path,
                version=work.version,
                nbits=work.nbits,
                ntime=work.min_ntime,
                clean_jobs=clean,
            )
        )

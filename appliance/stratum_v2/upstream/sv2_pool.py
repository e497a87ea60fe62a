"""SV2 pool upstream: one extended channel, its jobs turned into downstream work.

Noise initiator checking the pool's authority key (base58 text form), SetupConnection
(Mining, version rolling), OpenExtendedMiningChannel asking for at least `space` extranonce
bytes. NewExtendedMiningJob + SetNewPrevHash become `WorkTemplate`s whose extranonce space
is the downstream's (see `base.extranonce_padding`); downstream shares that meet the pool's
target go back as SubmitSharesExtended, and acks/rejects are counted per error code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.upstream.base import (
    PoolConnection,
    UpstreamShare,
    UpstreamState,
    extranonce_padding,
    extranonce_shortfall,
)
from appliance.stratum_v2.upstream.errors import (
    UpstreamError,
    UpstreamIncompatible,
    UpstreamRefused,
)
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.errors import ProtocolError
from protocols.sv2.keys import decode_authority_public_key
from protocols.sv2.messages import (
    CloseChannel,
    MiningClientFlags,
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    Protocol,
    Reconnect,
    SetExtranoncePrefix,
    SetNewPrevHash,
    SetTarget,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesSuccess,
)
from protocols.sv2.messages.base import Message

__all__ = ["Sv2PoolConfig", "Sv2PoolUpstream"]

log = logging.getLogger("blvm.stratum_v2.upstream.sv2")

READ_SIZE = 65536
MAX_JOBS = 32  # upstream jobs remembered (the pool may activate any of them)


@dataclass(slots=True)
class Sv2PoolConfig:
    host: str
    port: int
    authority_key: str | None  # base58 authority public key; None: certificate not checked
    user_identity: str
    nominal_hash_rate: float = 1e12
    connect_timeout: float = 10.0  # TCP + Noise + SetupConnection + channel open
    vendor: str = "blvm"
    firmware: str = "blvm-appliance"


@dataclass(frozen=True, slots=True)
class _Sent:
    """What a downstream work item was made of upstream."""

    job_id: int
    padding: bytes
    version: int
    rolling_allowed: bool


class Sv2PoolUpstream(PoolConnection):
    """One SV2 pool connection. `run()` serves until `close()` or a failure."""

    _log = log
    _protocol_errors = (ProtocolError,)

    def __init__(
        self,
        config: Sv2PoolConfig,
        space: int,
        *,
        name: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        super().__init__(space, name or f"sv2://{config.host}:{config.port}")
        self.authority_key = (
            decode_authority_public_key(config.authority_key) if config.authority_key else None
        )
        self._wall = wall_clock
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._conn: Sv2Connection | None = None
        self.channel_id: int | None = None
        self.target = 0
        self.extranonce_prefix = b""
        self.pool_extranonce_size = 0
        self._jobs: OrderedDict[int, NewExtendedMiningJob] = OrderedDict()
        self._prevhash: SetNewPrevHash | None = None
        self._sequence = 0

    # interface ----------------------------------------------------------------------------

    def submit_share(self, share: UpstreamShare) -> bool:
        if self._writer is None or self.channel_id is None:
            return False
        entry = self._templates.get(share.template_id)
        if entry is None or share.hash_value > self.target:
            return False
        if not entry.rolling_allowed and share.version != entry.version:
            self.stats.reject("version-rolling-not-allowed")
            return False
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        self._send(
            SubmitSharesExtended(
                self.channel_id,
                self._sequence,
                entry.job_id,
                share.nonce,
                share.ntime,
                share.version,
                entry.padding + share.extranonce,
            )
        )
        self.stats.submitted += 1
        return True

    # connection ---------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        assert self._conn is not None and self._writer is not None
        self._writer.write(self._conn.send(message))

    async def _serve(self) -> None:
        cfg = self.config
        async with asyncio.timeout(cfg.connect_timeout):
            reader, writer = await asyncio.open_connection(cfg.host, cfg.port, limit=READ_SIZE)
            self._writer = writer
            self._conn = Sv2Connection.initiator(self.authority_key, now=int(self._wall()))
            writer.write(self._conn.initiate())
            while self.channel_id is None:
                if not await self._read(reader):
                    raise UpstreamError(f"{self.name}: closed during setup")
        log.info(
            "%s: extended channel %d, extranonce %d bytes (prefix %s), target %064x",
            self.name,
            self.channel_id,
            self.pool_extranonce_size,
            self.extranonce_prefix.hex(),
            self.target,
        )
        while self.state is not UpstreamState.CLOSED:
            if not await self._read(reader):
                return

    async def _read(self, reader: asyncio.StreamReader) -> bool:
        data = await reader.read(READ_SIZE)
        if not data:
            return False
        assert self._conn is not None and self._writer is not None
        reply = self._conn.receive_data(data, now=int(self._wall()))
        if reply:
            self._writer.write(reply)
        for event in self._conn.events():
            self._handle(event)
        await self._writer.drain()
        return True

    # messages -----------------------------------------------------------------------------

    def _handle(self, event: object) -> None:
        cfg = self.config
        if isinstance(event, HandshakeComplete):
            flags = MiningClientFlags.REQUIRES_VERSION_ROLLING
            self._send(
                SetupConnection(
                    Protocol.MINING, 2, 2, int(flags), cfg.host, cfg.port, cfg.vendor, "",
                    cfg.firmware, "",
                )
            )  # fmt: skip
        elif isinstance(event, SetupConnectionSuccess):
            self._send(
                OpenExtendedMiningChannel(
                    1, cfg.user_identity, cfg.nominal_hash_rate, b"\xff" * 32, self.space
                )
            )
        elif isinstance(event, SetupConnectionError):
            raise UpstreamRefused(f"{self.name}: SetupConnection.Error {event.error_code}")
        elif isinstance(event, OpenExtendedMiningChannelSuccess):
            self.pool_extranonce_size = event.extranonce_size
            if event.extranonce_size < self.space:
                why = extranonce_shortfall(self.space, event.extranonce_size)
                raise UpstreamIncompatible(f"{self.name}: {why}")
            self.channel_id = event.channel_id
            self.extranonce_prefix = bytes(event.extranonce_prefix)
            self.target = int.from_bytes(event.target, "little")
        elif isinstance(event, OpenMiningChannelError):
            if event.error_code == "min-extranonce-size-too-large":
                raise UpstreamIncompatible(f"{self.name}: {extranonce_shortfall(self.space)}")
            raise UpstreamRefused(f"{self.name}: OpenMiningChannel.Error {event.error_code}")
        elif isinstance(event, NewExtendedMiningJob):
            self._on_job(event)
        elif isinstance(event, SetNewPrevHash):
            self._on_prevhash(event)
        elif isinstance(event, SetTarget):
            self.target = int.from_bytes(event.maximum_target, "little")
            log.info("%s: new target %064x", self.name, self.target)
        elif isinstance(event, CloseChannel) and event.channel_id == self.channel_id:
            raise UpstreamError(f"{self.name}: pool closed the channel: {event.reason_code}")
        elif isinstance(event, Reconnect):
            raise UpstreamError(f"{self.name}: pool asks to reconnect to {event.new_host}")
        elif isinstance(event, SetExtranoncePrefix):
            self.extranonce_prefix = bytes(event.extranonce_prefix)
        elif isinstance(event, SubmitSharesSuccess):
            self.stats.accepted += event.new_submits_accepted_count
        elif isinstance(event, SubmitSharesError):
            self.stats.reject(event.error_code)
            log.info(
                "%s: share %d rejected: %s", self.name, event.sequence_number, event.error_code
            )
        else:
            log.debug("%s: ignoring %s", self.name, type(event).__name__)

    def _on_job(self, job: NewExtendedMiningJob) -> None:
        self._jobs[job.job_id] = job
        while len(self._jobs) > MAX_JOBS:
            self._jobs.popitem(last=False)
        if job.min_ntime is not None and self._prevhash is not None:
            self._publish(job, self._prevhash)

    def _on_prevhash(self, prev: SetNewPrevHash) -> None:
        self._prevhash = prev
        job = self._jobs.get(prev.job_id)
        # Every job of an earlier prev_hash is stale now; keep only the activated one.
        self._jobs.clear()
        self._templates.clear()
        if job is None:
            log.warning("%s: SetNewPrevHash names unknown job %d", self.name, prev.job_id)
            return
        self._jobs[job.job_id] = job
        self._publish(job, prev)

    def _publish(self, job: NewExtendedMiningJob, prev: SetNewPrevHash) -> None:
        padding = extranonce_padding(self.pool_extranonce_size, self.space)
        template_id = self._take_template_id()
        min_ntime = prev.min_ntime if job.min_ntime is None else max(job.min_ntime, prev.min_ntime)
        work = WorkTemplate(
            template_id=template_id,
            prev_hash=bytes(prev.prev_hash),
            nbits=prev.nbits,
            version=job.version,
            min_ntime=min_ntime,
            coinbase_prefix=bytes(job.coinbase_tx_prefix) + self.extranonce_prefix + padding,
            coinbase_suffix=bytes(job.coinbase_tx_suffix),
            extranonce_size=self.space,
            merkle_path=tuple(bytes(p) for p in job.merkle_path),
        )
        self._deliver(work, _Sent(job.job_id, padding, job.version, job.version_rolling_allowed))

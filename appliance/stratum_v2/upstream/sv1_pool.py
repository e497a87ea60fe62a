"""SV1 pool upstream: stratum jobs translated into downstream work, shares back as submits.

- `mining.configure` asks for version rolling with BIP320's 0x1fffe000 (what SV1 pools grant);
  a downstream share that rolled bits outside the granted mask is not sent (the pool would
  reject it) and is counted under `version-outside-pool-mask`. Submits carry the rolled bits
  (`version & mask`), so the pool rebuilds the version as BIP310 says.
- `mining.set_difficulty` applies from the next `mining.notify` on (SV1 semantics): every job
  remembers the target in force when it arrived, and a share is sent only when its hash
  meets that target (difficulty d -> target 0xFFFF·2^208 / d, exactly).
- The extranonce: coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2, where extranonce2 = zero
  padding ‖ the downstream's `space` bytes (see `base.extranonce_padding`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.upstream.base import (
    PoolConnection,
    UpstreamShare,
    UpstreamState,
    extranonce_padding,
)
from appliance.stratum_v2.upstream.errors import UpstreamError, UpstreamRefused
from protocols.stratum_v1 import events as ev
from protocols.stratum_v1.connection import ClientConnection
from protocols.stratum_v1.errors import ProtocolError
from protocols.stratum_v1.work import difficulty_to_target

__all__ = ["BIP320_MASK", "Sv1PoolConfig", "Sv1PoolUpstream"]

log = logging.getLogger("blvm.stratum_v2.upstream.sv1")

BIP320_MASK = 0x1FFFE000
READ_SIZE = 65536


@dataclass(slots=True)
class Sv1PoolConfig:
    host: str
    port: int
    username: str
    password: str = "x"
    version_mask: int = BIP320_MASK
    connect_timeout: float = 10.0  # TCP + subscribe + authorize
    user_agent: str = "blvm-appliance"


@dataclass(frozen=True, slots=True)
class _Sent:
    job_id: str
    padding: bytes
    target: int
    version: int


class Sv1PoolUpstream(PoolConnection):
    """One SV1 pool connection. `run()` serves until `close()` or a failure."""

    _log = log
    _protocol_errors = (ProtocolError,)

    def __init__(self, config: Sv1PoolConfig, space: int, *, name: str | None = None) -> None:
        self.config = config
        super().__init__(space, name or f"stratum+tcp://{config.host}:{config.port}")
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self.conn = ClientConnection(self.config.user_agent)
        self.target: int | None = None  # from the latest set_difficulty
        self.version_mask = 0
        self.authorized = False

    # interface ----------------------------------------------------------------------------

    def submit_share(self, share: UpstreamShare) -> bool:
        sent = self._templates.get(share.template_id)
        if self._writer is None or sent is None or share.hash_value > sent.target:
            return False
        mask = self.version_mask
        if (share.version ^ sent.version) & ~mask & 0xFFFFFFFF:
            self.stats.reject("version-outside-pool-mask")
            return False
        bits = share.version & mask if mask else None
        submit = ev.Submit(
            self.config.username,
            sent.job_id,
            sent.padding + share.extranonce,
            share.ntime,
            share.nonce,
            bits,
        )
        self._writer.write(self.conn.send(submit))
        self.stats.submitted += 1
        return True

    # connection ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        cfg = self.config
        async with asyncio.timeout(cfg.connect_timeout):
            reader, writer = await asyncio.open_connection(cfg.host, cfg.port, limit=READ_SIZE)
            self._writer = writer
            writer.write(
                self.conn.send(ev.Configure.version_rolling(cfg.version_mask))
                + self.conn.send(ev.Subscribe(cfg.user_agent))
                + self.conn.send(ev.Authorize(cfg.username, cfg.password))
            )
            while not (self.authorized and self.conn.subscribed):
                if not await self._read(reader):
                    raise UpstreamError(f"{self.name}: closed during setup")
        log.info(
            "%s: subscribed, extranonce1 %s, extranonce2 %d bytes, version mask %08x",
            self.name,
            (self.conn.extranonce1 or b"").hex(),
            self.conn.extranonce2_size,
            self.version_mask,
        )
        while self.state is not UpstreamState.CLOSED:
            if not await self._read(reader):
                return

    async def _read(self, reader: asyncio.StreamReader) -> bool:
        data = await reader.read(READ_SIZE)
        if not data:
            return False
        for event in self.conn.receive_data(data):
            self._handle(event)
        assert self._writer is not None
        await self._writer.drain()
        return True

    def _handle(self, event: object) -> None:
        match event:
            case ev.SubscribeResult():
                extranonce_padding(event.extranonce2_size, self.space)  # raises if too small
            case ev.SetExtranonce():
                extranonce_padding(event.extranonce2_size, self.space)
                self._templates.clear()  # earlier jobs were built on the old extranonce1
            case ev.ConfigureResult():
                granted = self.conn.version_mask if event.version_rolling else None
                self.version_mask = (granted or 0) & self.config.version_mask
            case ev.SetVersionMask():
                self.version_mask = event.mask & self.config.version_mask
            case ev.AuthorizeResult():
                if not event.authorized:
                    raise UpstreamRefused(f"{self.name}: authorize refused: {event.error}")
                self.authorized = True
            case ev.SetDifficulty():
                self.target = difficulty_to_target(event.difficulty)
            case ev.Reconnect():
                raise UpstreamError(f"{self.name}: pool asks to reconnect ({event.host})")
            case ev.Notify():
                self._on_notify(event)
            case ev.SubmitResult():
                if event.accepted:
                    self.stats.accepted += 1
                else:
                    self.stats.reject(_reason(event.error))
            case ev.ErrorResponse():
                if isinstance(event.request, ev.Submit):
                    self.stats.reject(_reason(event.error))
                elif isinstance(event.request, ev.Authorize | ev.Subscribe):
                    raise UpstreamRefused(f"{self.name}: {event.error}")
                else:
                    log.info("%s: %s refused: %s", self.name, type(event.request), event.error)
            case ev.Ping() | ev.GetVersion():
                reply = (
                    ev.Pong(event.req_id)
                    if isinstance(event, ev.Ping)
                    else ev.VersionResult(event.req_id, self.config.user_agent)
                )
                assert self._writer is not None
                self._writer.write(self.conn.send(reply))
            case _:
                log.debug("%s: ignoring %s", self.name, type(event).__name__)

    def _on_notify(self, job: ev.Notify) -> None:
        extranonce1 = self.conn.extranonce1
        size = self.conn.extranonce2_size
        if extranonce1 is None or size is None:
            log.warning("%s: notify before the subscription was answered", self.name)
            return
        if job.clean_jobs:
            self._templates.clear()
        padding = extranonce_padding(size, self.space)
        # No set_difficulty yet: pools start at difficulty 1.
        target = self.target if self.target is not None else difficulty_to_target(1)
        template_id = self._take_template_id()
        work = WorkTemplate(
            template_id=template_id,
            prev_hash=job.prevhash,
            nbits=job.nbits,
            version=job.version,
            min_ntime=job.ntime,
            coinbase_prefix=job.coinb1 + extranonce1 + padding,
            coinbase_suffix=job.coinb2,
            extranonce_size=self.space,
            merkle_path=tuple(job.merkle_branch),
        )
        self._deliver(work, _Sent(job.job_id, padding, target, job.version))


def _reason(error: ev.RpcError | None) -> str:
    if error is None:
        return "rejected"
    return str(error.message or error.code)

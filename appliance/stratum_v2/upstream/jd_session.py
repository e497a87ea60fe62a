"""The Job Declaration client's decisions, sans-IO: three peers in, messages and work out.

Peers: the pool (Mining protocol, one extended channel, work selection), the JDS (Job
Declaration, full-template mode: we reveal transactions) and our node's template provider.
The caller feeds every message with `on_message(peer, msg, now)`, calls `check(now)` now and
then, and after each call sends `outbox` and hands `ready` work downstream.

Per template: RequestTransactionData → build the job (`jd_job`) with the pool payout output
of a fresh token → DeclareMiningJob (answering ProvideMissingTransactions) → on .Success,
SetCustomMiningJob with the new token → on .Success the work goes downstream. Work is only
delivered once both acknowledged it (no optimistic mining): a share is only worth sending
once the pool gave the job an id, and a job the JDS refuses must not have been mined. The
cost is two round trips before a new template is mined; the previous one is mined meanwhile.

Failures raise `UpstreamError` so the failover moves on: a setup not finished within
`connect_timeout`, any request unanswered after `timeout`, DeclareMiningJob.Error,
SetCustomMiningJob.Error. Rejected shares are counted per code in `stats`, where the
failover's reject-ratio policy sees them.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.upstream.base import UpstreamShare, UpstreamStats, extranonce_shortfall
from appliance.stratum_v2.upstream.errors import (
    UpstreamError,
    UpstreamIncompatible,
    UpstreamRefused,
)
from appliance.stratum_v2.upstream.jd_job import (
    DeclaredJob,
    JdJobError,
    PoolChannel,
    build_job,
    parse_output_array,
)
from protocols.bitcoin.tx import TxOut
from protocols.sv2.messages import (
    AllocateMiningJobToken,
    AllocateMiningJobTokenSuccess,
    CloseChannel,
    CoinbaseOutputConstraints,
    DeclareMiningJobError,
    DeclareMiningJobSuccess,
    MiningClientFlags,
    NewTemplate,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    Protocol,
    ProvideMissingTransactions,
    ProvideMissingTransactionsSuccess,
    Reconnect,
    RequestTransactionData,
    RequestTransactionDataError,
    RequestTransactionDataSuccess,
    SetCustomMiningJobError,
    SetCustomMiningJobSuccess,
    SetExtranoncePrefix,
    SetTarget,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesSuccess,
    TemplateSetNewPrevHash,
)
from protocols.sv2.messages.base import Message

__all__ = ["DECLARE_TX_DATA", "JdSession", "LiveJob", "Peer"]

log = logging.getLogger("blvm.stratum_v2.upstream.jd")

DECLARE_TX_DATA = 1 << 0  # JD SetupConnection flag: we reveal the template's transactions
TOKEN_RESERVE = 2  # tokens kept in hand so a new template is declared at once
SIGOPS_PER_OUTPUT = 4  # a legacy output script counts at most this (P2PKH: 1 sigop, x4)


class Peer(enum.Enum):
    POOL = "pool"
    JDS = "jds"
    TP = "tp"


@dataclass(frozen=True, slots=True)
class LiveJob:
    """A job both the JDS and the pool accepted: what a downstream share maps to."""

    job_id: int  # the pool's id from SetCustomMiningJob.Success
    job: DeclaredJob
    seq: int


@dataclass(slots=True)
class _Pending:
    job: DeclaredJob
    seq: int
    sent_at: float


@dataclass(slots=True)
class JdSession:
    space: int
    user_identity: str
    take_template_id: Callable[[], int]
    host: str = ""
    port: int = 0
    nominal_hash_rate: float = 1e12
    timeout: float = 10.0
    connect_timeout: float = 10.0
    tag: bytes = b""
    started_at: float = 0.0
    stats: UpstreamStats = field(default_factory=UpstreamStats)
    outbox: list[tuple[Peer, Message]] = field(default_factory=list)
    ready: list[tuple[WorkTemplate, LiveJob]] = field(default_factory=list)
    channel: PoolChannel | None = None
    target: int = 0
    blocks: int = 0
    jds_ready: bool = False
    tp_ready: bool = False
    _tokens: list[tuple[bytes, list[TxOut]]] = field(default_factory=list)
    _pool_outputs: list[TxOut] | None = None
    _token_requests: dict[int, float] = field(default_factory=dict)
    _next_request: int = 1
    _sequence: int = 0
    _seq: int = 0  # order in which templates were activated
    _delivered_seq: int = 0
    _prev: TemplateSetNewPrevHash | None = None
    _future: dict[int, NewTemplate] = field(default_factory=dict)
    _fetching: dict[int, tuple[NewTemplate, TemplateSetNewPrevHash, int, float]] = field(
        default_factory=dict
    )
    _waiting: tuple[NewTemplate, TemplateSetNewPrevHash, int, tuple[bytes, ...]] | None = None
    _declaring: dict[int, _Pending] = field(default_factory=dict)
    _customs: dict[int, _Pending] = field(default_factory=dict)

    # connections ----------------------------------------------------------------------------

    @property
    def setup_done(self) -> bool:
        return self.channel is not None and self.jds_ready and self.tp_ready

    def _send(self, peer: Peer, message: Message) -> None:
        self.outbox.append((peer, message))

    def _request_id(self) -> int:
        rid = self._next_request
        self._next_request = rid + 1 if rid < 0xFFFFFFFF else 1
        return rid

    def on_connected(self, peer: Peer, now: float) -> None:
        """The Noise handshake with `peer` is done (the TP arrives fully set up)."""
        if peer is Peer.POOL:
            flags = (
                MiningClientFlags.REQUIRES_WORK_SELECTION
                | MiningClientFlags.REQUIRES_VERSION_ROLLING
            )
            self._send(peer, self._setup(Protocol.MINING, int(flags)))
        elif peer is Peer.JDS:
            self._send(peer, self._setup(Protocol.JOB_DECLARATION, DECLARE_TX_DATA))
        else:
            self.tp_ready = True
            self._constraints()

    def _setup(self, protocol: Protocol, flags: int) -> SetupConnection:
        return SetupConnection(
            protocol, 2, 2, flags, self.host, self.port, "blvm", "", "blvm-appliance", ""
        )

    def _constraints(self) -> None:
        """Tell the TP how much room the pool's outputs need, once both are known."""
        if not self.tp_ready or self._pool_outputs is None:
            return
        size = sum(len(o.serialize()) for o in self._pool_outputs)
        self._send(
            Peer.TP,
            CoinbaseOutputConstraints(size, SIGOPS_PER_OUTPUT * len(self._pool_outputs)),
        )

    def _ask_tokens(self, now: float) -> None:
        while len(self._tokens) + len(self._token_requests) < TOKEN_RESERVE:
            rid = self._request_id()
            self._token_requests[rid] = now
            self._send(Peer.JDS, AllocateMiningJobToken(self.user_identity, rid))

    # time -------------------------------------------------------------------------------

    def check(self, now: float) -> None:
        """Raise when the setup or any request is overdue (JDS, pool or TP)."""
        if not self.setup_done and now - self.started_at > self.connect_timeout:
            missing = [
                name
                for name, ok in (
                    ("pool channel", self.channel is not None),
                    ("JDS setup", self.jds_ready),
                    ("template provider", self.tp_ready),
                )
                if not ok
            ]
            raise UpstreamError(f"no {', '.join(missing)} within {self.connect_timeout:.0f} s")
        late = now - self.timeout
        for what, times in (
            ("AllocateMiningJobToken", self._token_requests.values()),
            ("DeclareMiningJob", (p.sent_at for p in self._declaring.values())),
            ("SetCustomMiningJob", (p.sent_at for p in self._customs.values())),
            ("RequestTransactionData", (f[3] for f in self._fetching.values())),
        ):
            if any(t < late for t in times):
                raise UpstreamError(f"{what} unanswered for {self.timeout:.0f} s")

    # messages ---------------------------------------------------------------------------

    def on_message(self, peer: Peer, msg: Any, now: float) -> None:
        if peer is Peer.POOL:
            self._on_pool(msg, now)
        elif peer is Peer.JDS:
            self._on_jds(msg, now)
        else:
            self._on_tp(msg, now)

    def _on_pool(self, msg: Any, now: float) -> None:
        if isinstance(msg, SetupConnectionSuccess):
            self._send(
                Peer.POOL,
                OpenExtendedMiningChannel(
                    self._request_id(),
                    self.user_identity,
                    self.nominal_hash_rate,
                    b"\xff" * 32,
                    self.space,
                ),
            )
        elif isinstance(msg, SetupConnectionError):
            raise UpstreamRefused(f"pool refused work selection: {msg.error_code}")
        elif isinstance(msg, OpenExtendedMiningChannelSuccess):
            channel = PoolChannel(
                msg.channel_id, bytes(msg.extranonce_prefix), msg.extranonce_size, self.space
            )
            try:
                channel.padding  # noqa: B018 - raises when too small
            except JdJobError as exc:
                raise UpstreamRefused(str(exc)) from None
            self.channel = channel
            self.target = int.from_bytes(msg.target, "little")
            self._resume(now)
        elif isinstance(msg, OpenMiningChannelError):
            if msg.error_code == "min-extranonce-size-too-large":
                raise UpstreamIncompatible(extranonce_shortfall(self.space))
            raise UpstreamRefused(f"pool refused the channel: {msg.error_code}")
        elif isinstance(msg, SetCustomMiningJobSuccess):
            self._on_custom_ok(msg)
        elif isinstance(msg, SetCustomMiningJobError):
            self._customs.pop(msg.request_id, None)
            raise UpstreamRefused(f"pool rejected our custom job: {msg.error_code}")
        elif isinstance(msg, SetTarget):
            self.target = int.from_bytes(msg.maximum_target, "little")
        elif isinstance(msg, SetExtranoncePrefix) and self.channel is not None:
            self.channel = PoolChannel(
                self.channel.channel_id,
                bytes(msg.extranonce_prefix),
                self.channel.extranonce_size,
                self.space,
            )
        elif isinstance(msg, SubmitSharesSuccess):
            self.stats.accepted += msg.new_submits_accepted_count
        elif isinstance(msg, SubmitSharesError):
            self.stats.reject(msg.error_code)
            log.info("pool rejected share %d: %s", msg.sequence_number, msg.error_code)
        elif isinstance(msg, CloseChannel):
            raise UpstreamError(f"pool closed the channel: {msg.reason_code}")
        elif isinstance(msg, Reconnect):
            raise UpstreamError(f"pool asks to reconnect to {msg.new_host}")
        else:  # the pool's own jobs: we mine ours
            log.debug("pool: ignoring %s", type(msg).__name__)

    def _on_jds(self, msg: Any, now: float) -> None:
        if isinstance(msg, SetupConnectionSuccess):
            self.jds_ready = True
            self._ask_tokens(now)
        elif isinstance(msg, SetupConnectionError):
            raise UpstreamRefused(f"JDS refused setup: {msg.error_code}")
        elif isinstance(msg, AllocateMiningJobTokenSuccess):
            if self._token_requests.pop(msg.request_id, None) is None:
                log.warning("JDS: token for unknown request %d", msg.request_id)
                return
            try:
                outputs = parse_output_array(bytes(msg.coinbase_outputs))
            except JdJobError as exc:
                raise UpstreamError(f"JDS token: {exc}") from None
            if not outputs:
                raise UpstreamError("JDS token carries no pool payout output")
            first = self._pool_outputs is None
            self._pool_outputs = outputs
            self._tokens.append((bytes(msg.mining_job_token), outputs))
            if first:
                self._constraints()
            self._resume(now)
        elif isinstance(msg, ProvideMissingTransactions):
            pending = self._declaring.get(msg.request_id)
            if pending is None:
                log.warning("JDS asks transactions for unknown job %d", msg.request_id)
                return
            try:
                txs = pending.job.missing(tuple(msg.unknown_tx_position_list))
            except JdJobError as exc:
                raise UpstreamError(str(exc)) from None
            self._send(Peer.JDS, ProvideMissingTransactionsSuccess(msg.request_id, txs))
        elif isinstance(msg, DeclareMiningJobSuccess):
            self._on_declared(msg, now)
        elif isinstance(msg, DeclareMiningJobError):
            self._declaring.pop(msg.request_id, None)
            raise UpstreamRefused(f"JDS rejected our job: {msg.error_code}")
        else:
            log.debug("JDS: ignoring %s", type(msg).__name__)

    def _on_tp(self, msg: Any, now: float) -> None:
        if isinstance(msg, NewTemplate):
            if msg.future_template or self._prev is None:
                self._future[msg.template_id] = msg
            else:
                self._activate(msg, self._prev, now)
        elif isinstance(msg, TemplateSetNewPrevHash):
            self._prev = msg
            tpl = self._future.pop(msg.template_id, None)
            self._future.clear()
            if tpl is not None:
                self._activate(tpl, msg, now)
        elif isinstance(msg, RequestTransactionDataSuccess):
            entry = self._fetching.pop(msg.template_id, None)
            if entry is None:
                return
            tpl, prev, seq, _ = entry
            if self._prev is not None and prev.prev_hash != self._prev.prev_hash:
                return  # a new block arrived meanwhile
            if seq <= self._delivered_seq:
                return  # a newer template is already mined: no token spent on this one
            self._waiting = (tpl, prev, seq, tuple(bytes(t) for t in msg.transaction_list))
            self._resume(now)
        elif isinstance(msg, RequestTransactionDataError):
            # stale template: the next one is on its way
            self._fetching.pop(msg.template_id, None)
            log.info("TP: no transactions for template %d: %s", msg.template_id, msg.error_code)
        else:
            log.debug("TP: ignoring %s", type(msg).__name__)

    # the job pipeline -------------------------------------------------------------------

    def _activate(self, tpl: NewTemplate, prev: TemplateSetNewPrevHash, now: float) -> None:
        self._seq += 1
        self._fetching[tpl.template_id] = (tpl, prev, self._seq, now)
        self._send(Peer.TP, RequestTransactionData(tpl.template_id))

    def _resume(self, now: float) -> None:
        """Declare the newest fetched template once a channel and a token are in hand."""
        if self._waiting is None or self.channel is None or not self._tokens:
            return
        tpl, prev, seq, txs = self._waiting
        self._waiting = None
        token, outputs = self._tokens.pop(0)
        self._ask_tokens(now)
        try:
            job = build_job(tpl, prev, txs, outputs, self.channel, tag=self.tag)
        except JdJobError as exc:
            raise UpstreamError(
                f"cannot build the job for template {tpl.template_id}: {exc}"
            ) from None
        rid = self._request_id()
        self._declaring[rid] = _Pending(job, seq, now)
        self._send(Peer.JDS, job.declare(rid, token))

    def _stale(self, pending: _Pending) -> bool:
        current = self._prev is not None and pending.job.prev_hash != bytes(self._prev.prev_hash)
        return current or pending.seq <= self._delivered_seq

    def _on_declared(self, msg: DeclareMiningJobSuccess, now: float) -> None:
        pending = self._declaring.pop(msg.request_id, None)
        if pending is None or self.channel is None:
            return
        if self._stale(pending):
            return
        rid = self._request_id()
        pending.sent_at = now
        self._customs[rid] = pending
        custom = pending.job.custom_job(
            self.channel.channel_id, rid, bytes(msg.new_mining_job_token)
        )
        self._send(Peer.POOL, custom)

    def _on_custom_ok(self, msg: SetCustomMiningJobSuccess) -> None:
        pending = self._customs.pop(msg.request_id, None)
        if pending is None or self.channel is None or self._stale(pending):
            return
        self._delivered_seq = pending.seq
        live = LiveJob(msg.job_id, pending.job, pending.seq)
        work = pending.job.work(self.take_template_id(), self.channel)
        self.ready.append((work, live))

    # shares -----------------------------------------------------------------------------

    def submit_share(self, live: LiveJob, share: UpstreamShare) -> bool:
        """A downstream share on `live`: a block goes to the TP and the JDS, and any share
        meeting the pool's target goes to the pool. True when something was sent."""
        channel = self.channel
        if channel is None:
            return False
        full = channel.full_extranonce(share.extranonce)
        sent = False
        if share.hash_value <= live.job.network_target:
            submit, push = live.job.solution(full, share.version, share.ntime, share.nonce)
            self._send(Peer.TP, submit)
            self._send(Peer.JDS, push)
            self.blocks += 1
            sent = True
            log.info("block found on template %d: sent to the node and the JDS", submit.template_id)
        if share.hash_value > self.target:
            return sent
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        self._send(
            Peer.POOL,
            SubmitSharesExtended(
                channel.channel_id,
                self._sequence,
                live.job_id,
                share.nonce,
                share.ntime,
                share.version,
                channel.padding + share.extranonce,
            ),
        )
        self.stats.submitted += 1
        return True

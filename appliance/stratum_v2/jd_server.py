"""Job Declaration Server: the pool side of SV2 job declaration, over our node's JSON-RPC.

Per JD connection (Noise responder with the pool's authority key, like `Sv2Server`):

- AllocateMiningJobToken -> a fresh token and the coinbase output the pool wants paid (its
  payout script, value 0: the JD client puts the template's remaining value in it);
- DeclareMiningJob -> token, coinbase (one null-outpoint input, every valued output pays the
  pool, BIP34 height on top of our node's tip) and every wtxid against our node's mempool;
  unknown ones are asked for with ProvideMissingTransactions and checked by wtxid; then our
  node checks the whole block, proof of work aside (getblocktemplate "proposal": amounts,
  scripts, witness commitment, sigops, weight), and DeclareMiningJob.Success carries the
  token the JD client uses in SetCustomMiningJob (else DeclareMiningJob.Error `invalid-job`
  with the node's reason, or `stale-chain-tip` when the tip moved);
- PushSolution -> the block rebuilt from the declared job, submitted with `submitblock`.

Messages of one connection are handled in order; an RPC wait holds up that connection only.
Nothing is persisted: after a restart every old token is unknown (see `jd_tokens`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from appliance.node_rpc import NodeRpc, RpcCallError, RpcUnavailable
from appliance.stratum_v2.jd_jobs import (
    DeclaredCoinbase,
    DeclaredJob,
    DeclareError,
    JdRejected,
    check_height,
    check_payout,
    parse_declared_coinbase,
    proposal_block,
    rebuild_block,
)
from appliance.stratum_v2.jd_tokens import JobTokenRegistry
from appliance.stratum_v2.peer_session import READ_SIZE, ClosePeer, PeerSession
from protocols.bitcoin.block import Block
from protocols.bitcoin.compact import compact_size
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.tx import Tx, TxOut
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    AllocateMiningJobToken,
    AllocateMiningJobTokenSuccess,
    DeclareMiningJob,
    DeclareMiningJobError,
    DeclareMiningJobSuccess,
    Protocol,
    ProvideMissingTransactions,
    ProvideMissingTransactionsSuccess,
    PushSolution,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
)
from protocols.sv2.messages.base import Message
from protocols.sv2.noise import Certificate

__all__ = ["DECLARE_TX_DATA", "JdServer", "JdServerConfig", "MempoolView"]

log = logging.getLogger("blvm.stratum_v2.jd_server")

PROTOCOL_VERSION = 2
#: SetupConnection flag (Job Declaration): the client declares its transactions (bit 0).
DECLARE_TX_DATA = 1 << 0


def _hex_hash(h: bytes) -> str:
    return h[::-1].hex()


@dataclass(slots=True)
class JdServerConfig:
    host: str = "0.0.0.0"
    port: int = 34264
    handshake_timeout: float = 15.0
    max_pending: int = 16  # declarations waiting for ProvideMissingTransactions.Success
    max_cached_txs: int = 20_000  # mempool transactions kept parsed between declarations


@dataclass(slots=True)
class JdCounters:
    connections: int = 0
    connections_total: int = 0
    tokens_allocated: int = 0
    jobs_declared: int = 0
    jobs_rejected: dict[str, int] = field(default_factory=dict)
    missing_tx_requests: int = 0
    txs_provided: int = 0
    solutions_pushed: int = 0
    #: Per PushSolution: the hash of the block rebuilt from it, None when it fit no job.
    pushed_blocks: list[str | None] = field(default_factory=list)
    blocks_submitted: int = 0
    blocks_accepted: int = 0
    block_results: list[tuple[str, str | None]] = field(default_factory=list)


class MempoolView:
    """Our node's mempool seen through RPC: wtxid -> transaction, cached between calls."""

    def __init__(self, rpc: NodeRpc, max_cached: int = 20_000) -> None:
        self.rpc = rpc
        self.max_cached = max_cached
        self._txid_of: dict[bytes, bytes] = {}  # wtxid -> txid, from the last getrawmempool
        self._txs: OrderedDict[bytes, Tx] = OrderedDict()  # wtxid -> parsed tx

    async def _refresh_index(self) -> None:
        entries = await self.rpc.call("getrawmempool", True)
        self._txid_of = {
            bytes.fromhex(e["wtxid"])[::-1]: bytes.fromhex(txid)[::-1]
            for txid, e in entries.items()
        }

    async def lookup(self, wtxids: list[bytes]) -> list[Tx | None]:
        """The transactions for `wtxids`, None where the node's mempool lacks one."""
        if any(w not in self._txs and w not in self._txid_of for w in wtxids):
            await self._refresh_index()
        wanted = [w for w in dict.fromkeys(wtxids) if w not in self._txs and w in self._txid_of]
        if wanted:
            calls = [("getrawtransaction", [_hex_hash(self._txid_of[w])]) for w in wanted]
            for wtxid, raw in zip(wanted, await self.rpc.batch(calls), strict=True):
                if isinstance(raw, RpcCallError) or not isinstance(raw, str):
                    continue  # mined or evicted since the index was read
                tx = Tx.from_hex(raw)
                if tx.wtxid == wtxid:
                    self.remember(tx)
        out: list[Tx | None] = []
        for w in wtxids:
            tx = self._txs.get(w)
            if tx is not None:
                self._txs.move_to_end(w)
            out.append(tx)
        return out

    def remember(self, tx: Tx) -> None:
        self._txs[tx.wtxid] = tx
        while len(self._txs) > self.max_cached:
            self._txs.popitem(last=False)


@dataclass(frozen=True, slots=True)
class ChainTip:
    """Our node's tip as a declaration is checked against it."""

    prev_hash: bytes  # header byte order
    nbits: int  # what the next block must carry
    height: int
    median_time: int


@dataclass(slots=True)
class _Pending:
    """A declaration waiting for the transactions our node does not know."""

    msg: DeclareMiningJob
    coinbase: DeclaredCoinbase
    txs: list[Tx | None]
    missing: tuple[int, ...]
    tip: ChainTip


class _JdSession(PeerSession):
    """One JD client connection."""

    kind = "JD client"
    timeout_reason = "no SetupConnection in time"
    log = log

    def __init__(
        self,
        server: JdServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        owner: int,
    ) -> None:
        super().__init__(reader, writer, server.config.handshake_timeout)
        self.server = server
        self.owner = owner
        self.conn = Sv2Connection.responder(server.static_secret, server.certificate)
        self.setup: SetupConnection | None = None
        self.pending: OrderedDict[int, _Pending] = OrderedDict()

    def write(self, message: Message) -> None:
        self.writer.write(self.conn.send(message))

    def handshaking(self) -> bool:
        return self.setup is None

    async def on_data(self, data: bytes) -> None:
        reply = self.conn.receive_data(data)
        if reply:
            self.writer.write(reply)
        for event in self.conn.events():
            await self.handle(event)
            await self.writer.drain()

    def close(self) -> None:
        self.server.tokens.forget_owner(self.owner)
        self.writer.close()

    async def handle(self, event: object) -> None:
        if isinstance(event, HandshakeComplete):
            return
        if isinstance(event, SetupConnection):
            self.on_setup(event)
        elif self.setup is None:
            raise ClosePeer(f"{type(event).__name__} before SetupConnection")
        elif isinstance(event, AllocateMiningJobToken):
            self.on_allocate(event)
        elif isinstance(event, DeclareMiningJob):
            await self.on_declare(event)
        elif isinstance(event, ProvideMissingTransactionsSuccess):
            await self.on_provided(event)
        elif isinstance(event, PushSolution):
            await self.on_push(event)
        else:
            log.debug("JD client %s: ignoring %s", self.peer, type(event).__name__)

    def on_setup(self, msg: SetupConnection) -> None:
        if self.setup is not None:
            raise ClosePeer("second SetupConnection")
        if msg.protocol != Protocol.JOB_DECLARATION:
            self.write(SetupConnectionError(0, "unsupported-protocol"))
            raise ClosePeer(f"protocol {msg.protocol} is not Job Declaration")
        if not msg.min_version <= PROTOCOL_VERSION <= msg.max_version:
            self.write(SetupConnectionError(0, "protocol-version-mismatch"))
            raise ClosePeer(f"versions {msg.min_version}..{msg.max_version} exclude 2")
        if not msg.flags & DECLARE_TX_DATA:
            # We validate declared transactions; a client that will not declare them (coinbase
            # only) cannot have its jobs checked here.
            self.write(SetupConnectionError(DECLARE_TX_DATA, "missing-declare-tx-data-flag"))
            raise ClosePeer("DECLARE_TX_DATA flag not set")
        self.setup = msg
        self.write(SetupConnectionSuccess(PROTOCOL_VERSION, 0))
        log.info("JD client %s: %r %r set up", self.peer, msg.vendor, msg.device_id)

    def on_allocate(self, msg: AllocateMiningJobToken) -> None:
        token = self.server.tokens.allocate(self.owner)
        self.server.counters.tokens_allocated += 1
        self.write(AllocateMiningJobTokenSuccess(msg.request_id, token, self.server.pool_outputs))
        log.debug("JD client %s (%r): token %s", self.peer, msg.user_identifier, token.hex())

    def reject(self, request_id: int, token: bytes, exc: JdRejected) -> None:
        server = self.server
        server.tokens.release(token)
        server.counters.jobs_rejected[exc.code] = server.counters.jobs_rejected.get(exc.code, 0) + 1
        log.info("JD client %s: declaration %d refused: %s", self.peer, request_id, exc)
        self.write(DeclareMiningJobError(request_id, str(exc.code), exc.details.encode()))

    async def on_declare(self, msg: DeclareMiningJob) -> None:
        server = self.server
        token = bytes(msg.mining_job_token)
        try:
            if not server.tokens.is_allocated(token, self.owner):
                raise JdRejected(DeclareError.INVALID_TOKEN, "token not allocated to you")
            coinbase = parse_declared_coinbase(msg.coinbase_tx_prefix, msg.coinbase_tx_suffix)
            check_payout(coinbase.tx, server.payout_script)
            tip = await server.tip()
            check_height(coinbase.tx, tip.height + 1)
            txs = await server.mempool.lookup(list(msg.wtxid_list))
        except JdRejected as exc:
            self.reject(msg.request_id, token, exc)
            return
        except (RpcUnavailable, RpcCallError) as exc:
            log.warning("JD: node RPC failed during a declaration: %s", exc)
            self.reject(msg.request_id, token, JdRejected(DeclareError.INTERNAL_ERROR, str(exc)))
            return
        missing = tuple(i for i, tx in enumerate(txs) if tx is None)
        if missing:
            self.pending[msg.request_id] = _Pending(msg, coinbase, txs, missing, tip)
            while len(self.pending) > server.config.max_pending:
                _, dropped = self.pending.popitem(last=False)
                server.tokens.release(bytes(dropped.msg.mining_job_token))
            server.counters.missing_tx_requests += 1
            self.write(ProvideMissingTransactions(msg.request_id, missing))
            return
        await self.accept(msg, coinbase, txs, tip)

    async def on_provided(self, msg: ProvideMissingTransactionsSuccess) -> None:
        pending = self.pending.pop(msg.request_id, None)
        if pending is None:
            log.info("JD client %s: transactions for unknown request %d", self.peer, msg.request_id)
            return
        declared = pending.msg
        token = bytes(declared.mining_job_token)
        try:
            if len(msg.transaction_list) != len(pending.missing):
                raise JdRejected(
                    DeclareError.MISSING_TXS,
                    f"{len(msg.transaction_list)} transactions for {len(pending.missing)} asked",
                )
            for position, raw in zip(pending.missing, msg.transaction_list, strict=True):
                try:
                    tx = Tx.from_bytes(bytes(raw))
                except (BitcoinProtocolError, IndexError, ValueError):
                    raise JdRejected(
                        DeclareError.MISSING_TXS, f"transaction {position} unparsable"
                    ) from None
                if tx.wtxid != declared.wtxid_list[position]:
                    raise JdRejected(
                        DeclareError.MISSING_TXS, f"transaction {position} has another wtxid"
                    )
                pending.txs[position] = tx
            if await self.server.tip() != pending.tip:
                raise JdRejected(DeclareError.STALE_CHAIN_TIP, "the tip moved meanwhile")
        except JdRejected as exc:
            self.reject(declared.request_id, token, exc)
            return
        except (RpcUnavailable, RpcCallError) as exc:
            self.reject(
                declared.request_id, token, JdRejected(DeclareError.INTERNAL_ERROR, str(exc))
            )
            return
        self.server.counters.txs_provided += len(pending.missing)
        if await self.accept(declared, pending.coinbase, pending.txs, pending.tip):
            for position in pending.missing:  # kept for later declarations once proven valid
                tx = pending.txs[position]
                assert tx is not None
                self.server.mempool.remember(tx)

    async def accept(
        self,
        msg: DeclareMiningJob,
        coinbase: DeclaredCoinbase,
        txs: list[Tx | None],
        tip: ChainTip,
    ) -> bool:
        """Every transaction known: our node checks the whole block, then the job is live."""
        job = DeclaredJob(
            owner=self.owner,
            request_id=msg.request_id,
            version=msg.version,
            coinbase=coinbase,
            txs=tuple(t for t in txs if t is not None),
            prev_hash=tip.prev_hash,
            nbits=tip.nbits,
            height=tip.height + 1,
        )
        token = bytes(msg.mining_job_token)
        try:
            reason = await self.server.check_proposal(job, tip)
        except (RpcUnavailable, RpcCallError) as exc:
            self.reject(msg.request_id, token, JdRejected(DeclareError.INTERNAL_ERROR, str(exc)))
            return False
        if reason is not None:
            code = (
                DeclareError.STALE_CHAIN_TIP
                if reason == "inconclusive-not-best-prevblk"
                else DeclareError.INVALID_JOB
            )
            self.reject(msg.request_id, token, JdRejected(code, reason))
            return False
        new = self.server.tokens.activate(bytes(msg.mining_job_token), self.owner, job)
        if new is None:
            self.reject(
                msg.request_id,
                bytes(msg.mining_job_token),
                JdRejected(DeclareError.INVALID_TOKEN, "token expired"),
            )
            return False
        self.server.counters.jobs_declared += 1
        log.info(
            "JD client %s: job %d declared (%d transactions, height %d)",
            self.peer,
            msg.request_id,
            len(job.txs),
            job.height,
        )
        self.write(DeclareMiningJobSuccess(msg.request_id, new))
        return True

    async def on_push(self, msg: PushSolution) -> None:
        server = self.server
        server.counters.solutions_pushed += 1
        for job in server.tokens.jobs_of(self.owner):
            block = rebuild_block(job, msg)
            if block is not None:
                server.counters.pushed_blocks.append(block.hash_hex)
                await server.submit_block(block)
                return
        server.counters.pushed_blocks.append(None)
        log.warning("JD client %s: PushSolution matches none of its declared jobs", self.peer)


class JdServer:
    """`JdServer(tokens, static_secret, certificate, rpc, payout_script, config)`;
    `await start()`, then `await close()`. Share `tokens` with the `Sv2Server`."""

    def __init__(
        self,
        tokens: JobTokenRegistry,
        static_secret: bytes,
        certificate: Certificate,
        rpc: NodeRpc,
        payout_script: bytes,
        config: JdServerConfig | None = None,
    ) -> None:
        self.tokens = tokens
        self.static_secret = static_secret
        self.certificate = certificate
        self.rpc = rpc
        self.payout_script = payout_script
        self.config = config or JdServerConfig()
        self.mempool = MempoolView(rpc, self.config.max_cached_txs)
        self.counters = JdCounters()
        # One output, value 0, as a CompactSize-counted list (what SRI's JDC deserializes).
        self.pool_outputs = compact_size(1) + TxOut(0, payout_script).serialize()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._owners = itertools.count(1)
        self._sessions: set[asyncio.Task[Any]] = set()
        tokens.block_sink = self.submit_block

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connect, self.config.host, self.config.port, limit=READ_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("Job Declaration Server on %s:%d", self.config.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self.counters.connections += 1
        self.counters.connections_total += 1
        try:
            await _JdSession(self, reader, writer, next(self._owners)).run()
        except asyncio.CancelledError:
            # close() cancels sessions; ending normally keeps asyncio's stream callback from
            # logging the cancellation as an error.
            writer.close()
        finally:
            self.counters.connections -= 1
            self._sessions.discard(task)

    async def tip(self) -> ChainTip:
        """Our node's tip, and the nBits a block on it must carry."""
        best = await self.rpc.call("getbestblockhash")
        replies = await self.rpc.batch([("getblockheader", [best, True]), ("getmininginfo", [])])
        for reply in replies:
            if isinstance(reply, RpcCallError):
                raise reply
        header, mining = replies
        return ChainTip(
            bytes.fromhex(best)[::-1],
            int(mining["bits"], 16),
            int(header["height"]),
            int(header["mediantime"]),
        )

    async def check_proposal(self, job: DeclaredJob, tip: ChainTip) -> str | None:
        """Our node's verdict on the declared block, proof of work aside (BIP23 proposal):
        None when it would connect on our tip, else Core's reject reason."""
        block = proposal_block(job, max(tip.median_time + 1, int(time.time())))
        request = {"mode": "proposal", "data": block.serialize().hex()}
        return await self.rpc.call("getblocktemplate", request)

    async def submit_block(self, block: Block) -> str | None:
        """submitblock to our node; None when it connected the block (or already had it)."""
        self.counters.blocks_submitted += 1
        try:
            reason = await self.rpc.call("submitblock", block.serialize().hex())
        except (RpcUnavailable, RpcCallError) as exc:
            reason = f"rpc: {exc}"
        if reason == "duplicate":
            reason = None
        self.counters.block_results.append((block.hash_hex, reason))
        if reason is None:
            self.counters.blocks_accepted += 1
            log.info("block %s from a declared job submitted to the node", block.hash_hex)
        else:
            log.warning("block %s from a declared job rejected: %s", block.hash_hex, reason)
        return reason

    def status(self) -> dict[str, Any]:
        c = self.counters
        return {
            "port": self.port,
            "connections": c.connections,
            "connections_total": c.connections_total,
            "tokens_allocated": c.tokens_allocated,
            "jobs_declared": c.jobs_declared,
            "jobs_rejected": dict(c.jobs_rejected),
            "missing_tx_requests": c.missing_tx_requests,
            "txs_provided": c.txs_provided,
            "solutions_pushed": c.solutions_pushed,
            "blocks_submitted": c.blocks_submitted,
            "blocks_accepted": c.blocks_accepted,
            **self.tokens.stats(),
        }

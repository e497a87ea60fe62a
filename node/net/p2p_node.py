"""The node's P2P side: outbound and inbound peers, headers-first sync, block relay.

All chain work (headers, blocks, lookups) runs on one dedicated thread, so the
event loop stays responsive while scripts are verified and the chainstate keeps
a single writer. Blocks are fetched within a moving window above our tip, at
most ``MAX_BLOCKS_IN_FLIGHT_PER_PEER`` per peer; a peer that stalls a block
past ``BLOCK_DOWNLOAD_TIMEOUT`` is dropped and its blocks re-requested.

Low-work header defence: a headers batch is stored only when the chain it leads to has
at least the work of our active tip (and the network's minimum chain work), with links
and proof of work checked first. A full low-work batch starts a per-peer presync
(``headers_presync``: running work + commitments, then a redownload); a short one is
dropped. A peer that sends more low-work headers than an honest chain from the fork
point would need (``low_work_cap``) is disconnected. Unrequested low-work blocks are
ignored, and the header tree caps entries off the best chain whatever the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from node.chain.chainstate import BlockStatus, Chainstate, TipChange
from node.chain.headers import FORK_HEADERS_FULL, HeaderEntry, check_proof_of_work
from node.chain.prune import MIN_BLOCKS_TO_KEEP
from node.net.addrbook import AddressBook
from node.net.connection import PeerConnection
from node.net.headers_presync import HeadersPresync, Phase, PresyncError, low_work_cap
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.p2p.framing import encode_frame
from protocols.bitcoin.p2p.messages import (
    Addr,
    AddrV2,
    AddrV2Entry,
    BlockMessage,
    FeeFilter,
    GetAddr,
    GetBlocks,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvItem,
    InvType,
    Message,
    NetAddr,
    NotFound,
    Services,
    TimedAddr,
    TxMessage,
    Verack,
    Version,
)
from protocols.bitcoin.pow import block_work
from protocols.bitcoin.tx import Tx

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_HEADERS_RESULTS = 2000
MAX_BLOCKS_RESULTS = 500
OUTBOUND_CHECK_INTERVAL = 5.0
RETRY_ADDRESS_AFTER = 60.0
SEED_REQUERY = 300.0
MAX_ORPHANS = 100  # Core's DEFAULT_MAX_ORPHAN_TRANSACTIONS
MAX_REJECTED = 50_000
MAX_TX_REQUEST = 1000
MAX_NONCES = 1024  # handshakes that can be in progress at once, with room to spare
TX_INV_TYPES = (
    InvType.TX,
    InvType.WTX,
    InvType.WITNESS_TX,
)  # getblocks answers at most this many inv entries
BLOCK_DOWNLOAD_WINDOW = 1024
MAX_BLOCKS_IN_FLIGHT_PER_PEER = 16
BLOCK_DOWNLOAD_TIMEOUT = 60.0
BAN_SECONDS = 24 * 3600
RECONNECT_DELAY = 2.0
# Reasons that are not proof the peer is malicious (Core does not punish these).
NOT_PUNISHED = {
    "duplicate",
    "prev-blk-not-found",
    "time-too-new",
    "bad-prevblk-unknown",
    FORK_HEADERS_FULL,
}
# Low-work headers (not stored) a peer may send beyond what an honest chain from the fork
# point would need; past that it is dropped (not banned: a stale fork is not an attack).
LOW_WORK_SLACK = 2 * MAX_HEADERS_RESULTS
USER_AGENT = b"/blvm:0.1.0/"


@dataclass(slots=True)
class PeerState:
    conn: PeerConnection
    best_height: int = 0
    in_flight: dict[bytes, float] = field(default_factory=dict)
    fee_filter: int = 0  # sat/kvB below which the peer does not want our announcements
    outbound_target: tuple[str, int] | None = None
    presync: HeadersPresync | None = None  # a low-work header sync in progress
    low_work_headers: int = 0  # headers refused for low work (presyncs that failed too)
    presync_cap: int = 0  # low-work headers allowed while the current presync runs


@dataclass(slots=True, frozen=True)
class _Screen:
    """Verdict on a headers batch: store it, or treat it as low-work from ``start``."""

    store: bool
    start: HeaderEntry | None = None
    threshold: int = 0
    cap: int = 0
    invalid: str | None = None  # the batch is bad (Core's reason), punish the peer


class P2PNode:
    def __init__(
        self,
        chainstate: Chainstate,
        *,
        listen: tuple[str, int] | None = None,
        connect: list[tuple[str, int]] | None = None,
        max_inbound: int = 32,
        max_outbound: int = 8,
        datadir: Path | None = None,
        ban_local: bool = False,
        mempool: Any = None,
        dns_seeds: tuple[str, ...] | None = None,
    ) -> None:
        self.chain = chainstate
        self.mempool = mempool  # node.mempool.Mempool; None disables transaction relay
        self._orphans: OrderedDict[bytes, tuple[Tx, int]] = OrderedDict()  # wtxid -> (tx, peer)
        self._rejected: OrderedDict[bytes, None] = OrderedDict()  # recently refused wtxids
        self._unlisten: Callable[[], None] | None = None
        self._tx_source: dict[bytes, int] = {}  # wtxid -> peer id that sent it (no echo)
        self.network = chainstate.params.networks_entry()
        self.listen = listen
        self.connect = list(connect or [])
        self.max_inbound = max_inbound
        self.max_outbound = max_outbound
        self.addrbook = AddressBook(datadir / "peers.json" if datadir else None)
        self.peers: dict[int, PeerState] = {}
        self.banned: dict[str, float] = {}
        self.ban_local = ban_local  # Core never bans local peers; tests may ask for it
        self.recent_disconnects: deque[tuple[str, str, bool]] = deque(maxlen=64)
        # Our recent version nonces (self-connection check), bounded like every per-peer record.
        self._nonces: OrderedDict[int, None] = OrderedDict()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="chain")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self.bound_port: int | None = None
        self._added: dict[tuple[str, int], asyncio.Task] = {}
        # Automatic outbound peers (off when --connect names peers, as in Core).
        self.dns_seeds = self.network.dns_seeds if dns_seeds is None else dns_seeds
        self._dialing: set[tuple[str, int]] = set()
        self._last_try: dict[tuple[str, int], float] = {}
        self._last_seed_query = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.chain.subscribe(self._on_tip_change)
        if self.mempool is not None:
            self._unlisten = self.mempool.add_listener(self._on_mempool_accept)
        if self.listen is not None:
            self._server = await asyncio.start_server(self._accept, *self.listen)
            self.bound_port = self._server.sockets[0].getsockname()[1]
            log.info("listening for peers on %s:%d", self.listen[0], self.bound_port)
        for target in self.connect:
            self.add_node(target)
        if not self.connect:
            self._spawn(self._outbound_loop())
        self._spawn(self._stall_watch())

    async def stop(self) -> None:
        self._stopping.set()
        if self._unsubscribe:
            self._unsubscribe()
        if self._unlisten:
            self._unlisten()
        if self._server is not None:
            self._server.close()
        for state in list(self.peers.values()):
            state.conn.close("node shutting down")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._executor.shutdown(wait=True)
        self.addrbook.save()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_chain(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._executor, fn, *args)

    # -- connections -----------------------------------------------------------------------
    def _our_version(self, addr_recv: NetAddr) -> Version:
        services = Services.NODE_WITNESS | (
            Services.NODE_NETWORK_LIMITED if self.chain.policy.enabled else Services.NODE_NETWORK
        )
        nonce = random.getrandbits(64)
        self._nonces[nonce] = None
        while len(self._nonces) > MAX_NONCES:
            self._nonces.popitem(last=False)
        return Version(
            services=int(services),
            timestamp=int(time.time()),
            addr_recv=addr_recv,
            addr_from=NetAddr(int(services)),
            nonce=nonce,
            user_agent=USER_AGENT,
            start_height=self.chain.height,
            relay=True,
        )

    def _is_banned(self, host: str) -> bool:
        until = self.banned.get(host)
        if until is None:
            return False
        if until < time.time():
            del self.banned[host]
            return False
        return True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = (writer.get_extra_info("peername") or ("?",))[0]
        inbound = sum(1 for s in self.peers.values() if s.conn.inbound)
        if self._is_banned(host) or inbound >= self.max_inbound:
            writer.close()
            return
        conn = self._make_conn(reader, writer, inbound=True)
        await self._serve(conn, None)

    def _make_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, inbound: bool
    ) -> PeerConnection:
        return PeerConnection(
            reader,
            writer,
            magic=self.network.magic,
            inbound=inbound,
            our_version=self._our_version,
            handler=self._on_message,
        )

    def add_node(self, target: tuple[str, int], *, persistent: bool = True) -> bool:
        """Connect to ``target`` (kept connected when ``persistent``); False if already added.

        A one-shot connection (``persistent=False``) is always attempted.
        """
        if persistent and target in self._added:
            return False
        if persistent:
            task = asyncio.create_task(self._keep_connected(*target))
            self._added[target] = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._spawn(self._connect_once(*target))
        return True

    def remove_node(self, target: tuple[str, int]) -> bool:
        task = self._added.pop(target, None)
        if task is None:
            return False
        task.cancel()
        for state in list(self.peers.values()):
            if state.outbound_target == target:
                state.conn.close("removed with addnode")
        return True

    async def _connect_once(self, host: str, port: int) -> None:
        if self._is_banned(host):
            return
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, TimeoutError) as exc:
            log.info("cannot reach %s:%d: %s", host, port, exc)
            self.addrbook.mark_failure(host, port)
            return
        await self._serve(self._make_conn(reader, writer, inbound=False), (host, port))

    async def _outbound_loop(self) -> None:
        """Keep up to ``max_outbound`` outbound peers from the address book (and DNS seeds)."""
        while not self._stopping.is_set():
            outbound = sum(1 for s in self.peers.values() if not s.conn.inbound)
            want = self.max_outbound - outbound - len(self._dialing)
            if want > 0:
                now = time.monotonic()
                busy = {(s.conn.host, s.conn.port) for s in self.peers.values()}
                busy |= self._dialing | set(self._added)
                recent = {a for a, t in self._last_try.items() if now - t < RETRY_ADDRESS_AFTER}
                candidates = [
                    a
                    for a in self.addrbook.candidates(busy | recent)
                    if not self._is_banned(a.host)
                ]
                if not candidates and self.dns_seeds and now - self._last_seed_query > SEED_REQUERY:
                    self._last_seed_query = now
                    await self._query_seeds()
                for a in candidates[:want]:
                    self._spawn(self._dial((a.host, a.port)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), OUTBOUND_CHECK_INTERVAL)

    async def _dial(self, target: tuple[str, int]) -> None:
        self._dialing.add(target)
        self._last_try[target] = time.monotonic()
        try:
            await self._connect_once(*target)
        finally:
            self._dialing.discard(target)

    async def _query_seeds(self) -> None:
        """Resolve the network's DNS seeds into the address book."""
        assert self._loop is not None
        port = self.network.default_port
        for seed in self.dns_seeds:
            try:
                infos = await self._loop.getaddrinfo(seed, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                log.info("DNS seed %s: %s", seed, exc)
                continue
            now = int(time.time())
            for family, *_rest, sockaddr in infos:
                if family == socket.AF_INET:
                    self.addrbook.add(sockaddr[0], sockaddr[1], 0, now)
            log.info("DNS seed %s gave %d addresses", seed, len(infos))

    def _keep_address(self, host: str) -> bool:
        """Only routable addresses from peers, except on regtest (all loopback)."""
        if self.chain.params.name == "regtest":
            return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return ip.is_global

    async def _keep_connected(self, host: str, port: int) -> None:
        """Hold an outbound connection to ``host:port``, reconnecting after drops."""
        while not self._stopping.is_set():
            await self._connect_once(host, port)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RECONNECT_DELAY)

    async def _serve(self, conn: PeerConnection, target: tuple[str, int] | None) -> None:
        state = PeerState(conn, outbound_target=target)
        self.peers[conn.id] = state
        log.info("peer %d %s connected (%s)", conn.id, conn.addr, "in" if conn.inbound else "out")
        try:
            await conn.run()
        finally:
            del self.peers[conn.id]
            log.info("peer %d %s disconnected: %s", conn.id, conn.addr, conn.close_reason)
            self.recent_disconnects.append((conn.addr, conn.close_reason or "", conn.banned))
            if conn.banned:
                if self.ban_local or not ipaddress.ip_address(conn.host).is_loopback:
                    self.banned[conn.host] = time.time() + BAN_SECONDS
                    log.warning("banned %s for 24 h: %s", conn.host, conn.close_reason)
                else:
                    log.warning("not banning local peer %s: %s", conn.addr, conn.close_reason)
            if state.in_flight and not self._stopping.is_set():
                await self._request_blocks()

    # -- messages --------------------------------------------------------------------------
    async def _on_message(self, conn: PeerConnection, message: Message) -> None:
        state = self.peers.get(conn.id)
        if state is None:
            return
        handler = getattr(self, f"_on_{type(message).__name__}", None)
        if handler is not None:
            await handler(state, message)

    async def _on_Version(self, state: PeerState, msg: Version) -> None:
        pass  # replies are sent by the connection; nothing else to do until verack

    async def _on_Verack(self, state: PeerState, msg: Verack) -> None:
        conn = state.conn
        version = conn.version
        assert version is not None
        if version.nonce in self._nonces:
            conn.close("connected to ourselves")
            return
        state.best_height = version.start_height
        if not conn.inbound:
            self.addrbook.mark_success(conn.host, conn.port, int(time.time()))
            conn.send(GetAddr())
        if self.mempool is not None:
            # BIP133: tell the peer not to announce what our mempool would refuse anyway.
            conn.send(FeeFilter(self.mempool.min_fee_rate()))
        await self._send_getheaders(state)
        if self.chain.height > version.start_height:
            # The peer looks behind: announce our tip so it can fetch what it lacks
            # (peers that sync by inv + getblocks, like btcd, rely on this).
            conn.send(Inv((InvItem(InvType.BLOCK, self.chain.tip.hash),)))

    async def _send_getheaders(self, state: PeerState) -> None:
        locator = await self._run_chain(self.chain.tree.locator)
        state.conn.send(GetHeaders(locator=tuple(locator)))

    async def _on_Headers(self, state: PeerState, msg: Headers) -> None:
        raws = [h.serialize() for h in msg.headers]
        full = len(raws) == MAX_HEADERS_RESULTS
        presync = state.presync
        if presync is not None and presync.continues(raws):
            # The next batch of the sync (an empty answer ends it like a short one).
            await self._feed_presync(state, raws, full)
            return
        if not raws:
            return
        screen = await self._run_chain(self._screen_headers, raws)
        if screen.invalid is not None:
            state.conn.close(f"invalid header: {screen.invalid}", ban=True)
            return
        if not screen.store:
            assert screen.start is not None
            if full and presync is None:  # maybe a long chain that gains work later: presync it
                state.presync = HeadersPresync(
                    screen.start,
                    screen.threshold,
                    self.chain.params,
                    salt=random.randbytes(16),
                    offset=random.randrange(1 << 16),
                )
                state.presync_cap = screen.cap
                await self._feed_presync(state, raws, full)
                return
            state.low_work_headers += len(raws)
            if state.low_work_headers > screen.cap:
                state.conn.close(f"too many low-work headers ({state.low_work_headers})")
            return
        if not await self._store_headers(state, raws):
            return
        if full:
            state.conn.send(GetHeaders(locator=(msg.headers[-1].hash,)))
        await self._request_blocks()

    async def _store_headers(self, state: PeerState, raws: list[bytes]) -> bool:
        """Add headers to the tree; False when the peer was dropped or asked again."""
        result = await self._run_chain(self.chain.process_headers, raws)
        if result.reason is not None:
            if result.reason in NOT_PUNISHED or result.reason.startswith("prev"):
                await self._send_getheaders(state)  # unconnecting: ask from our locator
                return False
            state.conn.close(f"invalid header: {result.reason}", ban=True)
            return False
        if result.last_height is not None:
            state.best_height = max(state.best_height, result.last_height)
        return True

    def work_threshold(self) -> int:
        """Work a fork's headers must reach before we store them (Core's anti-DoS threshold)."""
        return max(self.chain.tip.chainwork, self.chain.params.minimum_chain_work)

    def _screen_headers(self, raws: list[bytes]) -> _Screen:
        """Store headers only if their chain reaches the work threshold (chain thread)."""
        chain = self.chain
        with chain.lock:
            tree = chain.tree
            start = tree.get(raws[0][4:36])
            if start is None:
                return _Screen(True)  # unconnecting: the tree answers prev-blk-not-found
            if tree.get(sha256d(raws[-1])) is not None:
                return _Screen(True)  # all known already (an ancestor chain is never partial)
            threshold = self.work_threshold()
            work = start.chainwork
            prev = start.hash
            params = chain.params
            for raw in raws:
                # Only work that is really there counts: check links and proof of work, so
                # a cheap fork cannot borrow work from one bogus hard-target header.
                h = sha256d(raw)
                bits = int.from_bytes(raw[72:76], "little")
                if raw[4:36] != prev:
                    return _Screen(False, start, invalid="non-continuous headers sequence")
                if not check_proof_of_work(h, bits, params):
                    return _Screen(False, start, invalid="high-hash")
                work += block_work(bits)
                prev = h
            if work >= threshold:
                return _Screen(True)
            return _Screen(False, start, threshold, low_work_cap(start, threshold, LOW_WORK_SLACK))

    async def _feed_presync(self, state: PeerState, raws: list[bytes], full: bool) -> None:
        presync = state.presync
        assert presync is not None
        conn = state.conn
        try:
            step = await self._run_chain(presync.feed, raws, full)
        except PresyncError as exc:
            state.presync = None
            state.low_work_headers += presync.presync_count
            conn.close(f"headers presync failed: {exc}")
            return
        if presync.phase is Phase.PRESYNC or step.abandoned:
            count = state.low_work_headers + presync.presync_count
            if step.abandoned:
                state.presync = None
                state.low_work_headers = count
                log.info(
                    "peer %d: low-work header chain of %d after height %d not stored",
                    conn.id,
                    presync.presync_count,
                    presync.start_height,
                )
            if count > state.presync_cap:
                state.presync = None
                conn.close(f"too many low-work headers ({count})")
                return
        if step.release and not await self._store_headers(state, step.release):
            state.presync = None
            return
        if presync.phase is Phase.DONE:
            state.presync = None
        if step.request_from is not None:
            conn.send(GetHeaders(locator=(step.request_from,)))
        if step.release:
            await self._request_blocks()

    async def _on_Inv(self, state: PeerState, msg: Inv) -> None:
        if any(i.type in (InvType.BLOCK, InvType.WITNESS_BLOCK) for i in msg.items):
            await self._send_getheaders(state)
        if self.mempool is None:
            return
        wtx = state.conn.protocol.features.wtxid_relay
        wanted = []
        for item in msg.items:
            if item.type not in TX_INV_TYPES:
                continue
            if item.hash in self._rejected or item.hash in self._orphans:
                continue
            known = (
                self.mempool.get_by_wtxid(item.hash)
                if item.type == InvType.WTX
                else self.mempool.get(item.hash)
            )
            if known is None:
                kind = InvType.WTX if wtx and item.type == InvType.WTX else InvType.WITNESS_TX
                wanted.append(InvItem(kind, item.hash))
        if wanted:
            state.conn.send(GetData(tuple(wanted[:MAX_TX_REQUEST])))

    async def _on_TxMessage(self, state: PeerState, msg: TxMessage) -> None:
        if self.mempool is None:
            return
        await self._admit_tx(msg.tx, state.conn.id)

    async def _admit_tx(self, tx: Tx, source: int) -> None:
        """Offer ``tx`` to the mempool; park orphans; retry orphans it unblocks."""
        pending = [(tx, source)]
        while pending:
            tx, source = pending.pop()
            # Recorded first: the mempool's listener announces the tx before accept returns.
            self._tx_source[tx.wtxid] = source
            result = await self._run_chain(self.mempool.accept, tx)
            if result.accepted:
                pending += self._orphans_spending(tx.txid)
                continue
            self._tx_source.pop(tx.wtxid, None)
            if result.missing_inputs:
                self._orphans[tx.wtxid] = (tx, source)
                while len(self._orphans) > MAX_ORPHANS:
                    self._orphans.popitem(last=False)
                continue
            self._remember_rejected(tx.wtxid)
            state = self.peers.get(source)
            if state is not None and (result.reason or "").startswith("mandatory-script-verify"):
                state.conn.close(f"invalid transaction: {result.reason}", ban=True)

    def _orphans_spending(self, txid: bytes) -> list[tuple[Tx, int]]:
        out = []
        for wtxid, (tx, source) in list(self._orphans.items()):
            if any(txin.prev_txid == txid for txin in tx.inputs):
                del self._orphans[wtxid]
                out.append((tx, source))
        return out

    def _remember_rejected(self, wtxid: bytes) -> None:
        self._rejected[wtxid] = None
        while len(self._rejected) > MAX_REJECTED:
            self._rejected.popitem(last=False)

    def _on_mempool_accept(self, entry: Any) -> None:
        """Mempool listener (any thread): announce the new transaction from the event loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._announce_tx, entry)

    def _announce_tx(self, entry: Any) -> None:
        source = self._tx_source.pop(entry.tx.wtxid, None)
        feerate = entry.fee * 1000 // max(entry.vsize, 1)
        for state in self.peers.values():
            conn = state.conn
            if conn.id == source or not conn.handshake_done.is_set():
                continue
            version = conn.version
            if version is not None and not version.relay:
                continue
            if feerate < state.fee_filter:
                continue
            if conn.protocol.features.wtxid_relay:
                conn.send(Inv((InvItem(InvType.WTX, entry.tx.wtxid),)))
            else:
                conn.send(Inv((InvItem(InvType.TX, entry.tx.txid),)))

    async def _on_FeeFilter(self, state: PeerState, msg: FeeFilter) -> None:
        state.fee_filter = max(0, msg.feerate)

    async def _on_BlockMessage(self, state: PeerState, msg: BlockMessage) -> None:
        block = msg.block
        h = block.hash
        requested = state.in_flight.pop(h, None) is not None
        if not requested and await self._run_chain(self._low_work_block, block.header):
            log.debug(
                "peer %d: ignored unrequested low-work block %s", state.conn.id, h[::-1].hex()
            )
            return
        result = await self._run_chain(self.chain.process_block, block)
        if result.status == BlockStatus.INVALID and result.reason not in NOT_PUNISHED:
            state.conn.close(f"invalid block {result.hash_hex}: {result.reason}", ban=True)
            return
        if result.height is not None:
            state.best_height = max(state.best_height, result.height)
        await self._request_blocks()

    async def _on_GetHeaders(self, state: PeerState, msg: GetHeaders) -> None:
        headers = await self._run_chain(self._headers_after, msg.locator, msg.stop)
        state.conn.send(Headers(tuple(BlockHeader.parse(raw) for raw in headers)))

    async def _on_GetBlocks(self, state: PeerState, msg: GetBlocks) -> None:
        hashes = await self._run_chain(
            self._active_after, msg.locator, msg.stop, MAX_BLOCKS_RESULTS, lambda e: e.hash
        )
        if hashes:
            state.conn.send(Inv(tuple(InvItem(InvType.BLOCK, h) for h in hashes)))

    def _low_work_block(self, header: BlockHeader) -> bool:
        """An unknown block whose chain has less work than our tip (Core ignores those)."""
        chain = self.chain
        with chain.lock:
            if chain.entry(header.hash) is not None:
                return False
            parent = chain.entry(header.prev_hash)
            if parent is None:
                return False
            return parent.chainwork + block_work(header.bits) < self.work_threshold()

    def _headers_after(self, locator: tuple[bytes, ...], stop: bytes) -> list[bytes]:
        """Headers of our active chain after the first locator hash we know (chain thread)."""
        return self._active_after(locator, stop, MAX_HEADERS_RESULTS, lambda e: e.raw)

    def _active_after(
        self, locator: tuple[bytes, ...], stop: bytes, limit: int, pick: Callable[[Any], T]
    ) -> list[T]:
        """Up to ``limit`` active-chain entries after the locator's fork point, through ``stop``."""
        chain = self.chain
        start = 0
        for h in locator:
            entry = chain.entry(h)
            if entry is not None and chain.in_active_chain(h):
                start = entry.height + 1
                break
        out = []
        for height in range(start, min(start + limit, chain.height + 1)):
            block_hash = chain.block_hash_at(height)
            if block_hash is None:
                break
            out.append(pick(chain.entry(block_hash)))
            if block_hash == stop:
                break
        return out

    async def _on_GetData(self, state: PeerState, msg: GetData) -> None:
        self._serve_txs(state, [i for i in msg.items if i.type in TX_INV_TYPES])
        wanted = [i for i in msg.items if i.type in (InvType.BLOCK, InvType.WITNESS_BLOCK)]
        if not wanted:
            return
        found, missing, too_deep = await self._run_chain(self._blocks_for, wanted)
        conn = state.conn
        for item, raw in found:
            if item.type == InvType.BLOCK:  # a pre-segwit request: strip witnesses
                raw = Block.from_bytes(raw).serialize(with_witness=False)
            conn.writer.write(encode_frame(self.network.magic, b"block", raw))
        if missing:
            conn.send(NotFound(tuple(missing)))
        if too_deep:
            # Core: a pruned node ignores requests for historical blocks and disconnects.
            conn.close("requested a block below our pruned window")

    def _serve_txs(self, state: PeerState, items: list[InvItem]) -> None:
        if not items:
            return
        missing = []
        for item in items:
            entry = None
            if self.mempool is not None:
                entry = (
                    self.mempool.get_by_wtxid(item.hash)
                    if item.type == InvType.WTX
                    else self.mempool.get(item.hash)
                )
            if entry is None:
                missing.append(item)
            elif item.type == InvType.TX:
                raw = entry.tx.serialize(with_witness=False)
                state.conn.writer.write(encode_frame(self.network.magic, b"tx", raw))
            else:
                state.conn.send(TxMessage(entry.tx))
        if missing:
            state.conn.send(NotFound(tuple(missing)))

    def _blocks_for(
        self, items: list[InvItem]
    ) -> tuple[list[tuple[InvItem, bytes]], list[InvItem], bool]:
        chain = self.chain
        found, missing = [], []
        too_deep = False
        limit = chain.height - MIN_BLOCKS_TO_KEEP - 2
        for item in items:
            entry = chain.entry(item.hash)
            if (
                chain.policy.enabled
                and entry is not None
                and chain.in_active_chain(item.hash)
                and entry.height < limit
            ):
                too_deep = True
                break
            raw = chain.get_block_bytes(item.hash)
            if raw is None:
                missing.append(item)
            else:
                found.append((item, raw))
        return found, missing, too_deep

    async def _on_Addr(self, state: PeerState, msg: Addr) -> None:
        for a in msg.addrs:
            if self._keep_address(a.addr.host):
                self.addrbook.add(a.addr.host, a.addr.port, a.addr.services, a.time)

    async def _on_AddrV2(self, state: PeerState, msg: AddrV2) -> None:
        for a in msg.addrs:
            if a.network == 1:  # IPv4 is all we dial; others are accepted and not kept
                host = ".".join(str(b) for b in a.addr)
                if self._keep_address(host):
                    self.addrbook.add(host, a.port, a.services, a.time)

    async def _on_GetAddr(self, state: PeerState, msg: GetAddr) -> None:
        if not state.conn.inbound:
            return  # Core answers getaddr only on inbound connections
        now = int(time.time())
        known = self.addrbook.candidates(set())[:1000]
        if state.conn.protocol.features.addrv2:
            state.conn.send(
                AddrV2(
                    tuple(
                        AddrV2Entry(
                            a.last_seen or now,
                            a.services,
                            1,
                            bytes(int(p) for p in a.host.split(".")),
                            a.port,
                        )
                        for a in known
                        if a.host.count(".") == 3
                    )
                )
            )
        else:
            state.conn.send(
                Addr(
                    tuple(
                        TimedAddr(a.last_seen or now, NetAddr.ipv4(a.host, a.port, a.services))
                        for a in known
                        if a.host.count(".") == 3
                    )
                )
            )

    # -- block download ----------------------------------------------------------------------
    async def _request_blocks(self) -> None:
        wanted = await self._run_chain(self._blocks_to_fetch)
        if not wanted:
            return
        in_flight = {h for s in self.peers.values() for h in s.in_flight}
        now = time.monotonic()
        peers = [s for s in self.peers.values() if s.conn.handshake_done.is_set()]
        requests: dict[int, list[InvItem]] = {}
        for height, block_hash in wanted:
            if block_hash in in_flight:
                continue
            candidates = [
                s
                for s in peers
                if len(s.in_flight) < MAX_BLOCKS_IN_FLIGHT_PER_PEER
                and s.best_height >= height
                and self._peer_can_serve(s, height)
            ]
            if not candidates:
                continue
            peer = min(candidates, key=lambda s: len(s.in_flight))
            peer.in_flight[block_hash] = now
            in_flight.add(block_hash)
            requests.setdefault(peer.conn.id, []).append(InvItem(InvType.WITNESS_BLOCK, block_hash))
        for peer_id, items in requests.items():
            state = self.peers.get(peer_id)
            if state is not None:
                state.conn.send(GetData(tuple(items)))

    @staticmethod
    def _peer_can_serve(state: PeerState, height: int) -> bool:
        version = state.conn.version
        if version is None:
            return False
        if version.services & Services.NODE_NETWORK:
            return True
        # A limited peer keeps only its last 288 blocks (Core avoids asking deeper).
        return bool(version.services & Services.NODE_NETWORK_LIMITED) and (
            height > state.best_height - MIN_BLOCKS_TO_KEEP
        )

    def _blocks_to_fetch(self) -> list[tuple[int, bytes]]:
        """(height, hash) of best-header-chain blocks we lack, within the window (chain thread)."""
        chain = self.chain
        tree = chain.tree
        best = tree.best
        tip = chain.height
        if best.chainwork <= chain.tip.chainwork:
            return []
        fork = tree.fork_point(best, chain.entry(chain.tip.hash))
        out = []
        for height in range(fork.height + 1, min(best.height, tip + BLOCK_DOWNLOAD_WINDOW) + 1):
            entry = tree.ancestor(best, height)
            if entry is None:
                break
            if chain.get_block_bytes(entry.hash) is None:
                out.append((height, entry.hash))
        return out

    async def _stall_watch(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(2.0)
            now = time.monotonic()
            for state in list(self.peers.values()):
                if any(now - t > BLOCK_DOWNLOAD_TIMEOUT for t in state.in_flight.values()):
                    state.conn.close("block download stalled")

    # -- relay -------------------------------------------------------------------------------
    def _on_tip_change(self, change: TipChange) -> None:
        """Called on the chain thread; announce the new blocks from the event loop."""
        if self._loop is None or not change.connected:
            return
        self._loop.call_soon_threadsafe(self._spawn, self._announce(change.connected))

    async def _announce(self, hashes: tuple[bytes, ...]) -> None:
        raws = await self._run_chain(lambda: [self.chain.entry(h).raw for h in hashes[-8:]])
        headers = tuple(BlockHeader.parse(raw) for raw in raws)
        for state in list(self.peers.values()):
            conn = state.conn
            if not conn.handshake_done.is_set():
                continue
            if conn.send_headers:
                conn.send(Headers(headers))
            else:
                conn.send(Inv(tuple(InvItem(InvType.BLOCK, h.hash) for h in headers)))

    # -- status --------------------------------------------------------------------------------
    def peer_info(self) -> list[dict[str, Any]]:
        out = []
        for state in self.peers.values():
            c = state.conn
            v = c.version
            if c.inbound:
                kind = "inbound"
            elif state.outbound_target is not None and state.outbound_target in self._added:
                kind = "manual"
            else:
                kind = "outbound-full-relay"
            out.append(
                {
                    "id": c.id,
                    "addr": c.addr,
                    "inbound": c.inbound,
                    "connection_type": kind,
                    "services": f"{v.services:016x}" if v else None,
                    "servicesnames": [f.name for f in Services if f.name and v and v.services & f],
                    "relaytxes": bool(v.relay) if v else False,
                    "conntime": int(c.stats.connected_at),
                    "lastsend": int(c.stats.last_send),
                    "lastrecv": int(c.stats.last_recv),
                    "synced_headers": state.best_height,
                    "version": v.version if v else None,
                    "subver": v.user_agent.decode("latin-1") if v else None,
                    "startingheight": v.start_height if v else None,
                    "synced_blocks": state.best_height,
                    "inflight": len(state.in_flight),
                    "bytessent": c.stats.bytes_sent,
                    "bytesrecv": c.stats.bytes_recv,
                    "pingtime": c.stats.ping_ms / 1000 if c.stats.ping_ms else None,
                }
            )
        return out

"""Stratum V2 Template Provider: the Template Distribution Protocol served from our node.

Pools and JD clients (SRI's ``pool_sv2`` / ``jd_client_sv2`` with ``Sv2Tp``, our own SV2
module) connect over TCP + Noise NX. Per connection: SetupConnection (protocol 2), then
CoinbaseOutputConstraints; from then on the client gets

- on connect and on every new tip: ``NewTemplate(future=true)`` then ``SetNewPrevHash``
  naming it, so the client can prepare work before switching;
- when the mempool's fees beat the last template by ``fee_delta`` satoshis (checked at most
  every ``fee_interval`` seconds): ``NewTemplate(future=false)`` for the current tip;
- answers to ``RequestTransactionData`` (the template's transactions, or
  ``template-id-not-found`` / ``stale-template-id``);
- ``SubmitSolution`` rebuilds the block from the template and goes straight to the
  chainstate, so a found block is validated and relayed at once.

Options: ``empty_first`` sends a coinbase-only template the moment the tip moves and the
full one when it is built; while the node is syncing (best header more than
``SYNC_SLACK_BLOCKS`` ahead of the tip) no work is sent at all.

Tip changes arrive through ``Chainstate.subscribe`` and mempool changes through
``Mempool.add_listener`` (any thread; both just wake the event loop), never by polling.
A malformed frame or a protocol violation closes only that connection, with the reason
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node.chain.chainstate import BlockStatus, Chainstate, TipChange
from node.mining.template import BlockTemplate, TemplateBuilder
from node.mining.tp_keys import TpKeys
from node.mining.tp_mapping import (
    SolutionError,
    block_from_solution,
    new_template_message,
    reserved_for,
    set_new_prev_hash_message,
)
from protocols.sv2.connection import HandshakeComplete, Sv2Connection, UnknownMessage
from protocols.sv2.errors import ProtocolError
from protocols.sv2.messages import (
    CoinbaseOutputConstraints,
    Message,
    Protocol,
    RequestTransactionData,
    RequestTransactionDataError,
    RequestTransactionDataSuccess,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
    SubmitSolution,
)

__all__ = [
    "DEFAULT_PORTS",
    "TemplateProvider",
    "TemplateProviderConfig",
    "default_port",
]

log = logging.getLogger(__name__)

SV2_VERSION = 2
#: Bitcoin Core's SV2 template provider ports (its ``-sv2port`` defaults).
DEFAULT_PORTS = {"mainnet": 8442, "testnet4": 48442, "signet": 38442, "regtest": 18447}
MAX_INBOUND_PAYLOAD = 1 << 17  # clients send small messages; SubmitSolution is < 64 KiB
MAX_COINBASE_OUTPUT_SIZE = 65_535  # the coinbase travels back in a B0_64K
MAX_COINBASE_OUTPUT_SIGOPS = 20_000
READ_CHUNK = 65_536
#: Work is held back while the best known header is more than this many blocks ahead of
#: the tip (initial sync): mining on a tip that far behind only wastes hashes.
SYNC_SLACK_BLOCKS = 6


def default_port(network: str) -> int:
    return DEFAULT_PORTS.get(network, DEFAULT_PORTS["mainnet"])


@dataclass(slots=True)
class TemplateProviderConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (see ``TemplateProvider.port``)
    fee_delta: int = 1_000  # satoshis a template must gain before it is re-sent
    fee_interval: float = 30.0  # seconds between fee-driven re-sends
    cert_validity: int = 3_600  # seconds a per-connection certificate is valid
    handshake_timeout: float = 10.0  # Noise + SetupConnection must finish in this time
    max_write_buffer: int = 64 << 20  # a client this far behind is dropped
    templates_kept: int = 64  # per client, for RequestTransactionData / SubmitSolution
    #: On a new tip, first send a transaction-less template (ready in a millisecond), then
    #: the full one as soon as it is built: less hashing on the old tip, at the price of
    #: the fees of a block found in between. Off by default: SRI roles open new channels
    #: on the last *future* template, which would then be the empty one.
    empty_first: bool = False


class _Close(Exception):
    """This client broke the protocol; close it with the reason."""


@dataclass(slots=True, eq=False)
class _Client:
    peer: str
    conn: Sv2Connection
    writer: asyncio.StreamWriter
    setup: bool = False
    constraints: tuple[int, int] | None = None  # (max additional size, max additional sigops)
    prev_hash: bytes | None = None
    sent_value: int = 0  # coinbase value of the last template sent
    sent_empty: bool = False  # the last template was the empty-first one
    templates: OrderedDict[int, BlockTemplate] = field(default_factory=OrderedDict)
    closed: bool = False


@dataclass(slots=True)
class TemplateProviderStats:
    connections: int = 0
    templates_sent: int = 0
    prev_hashes_sent: int = 0
    solutions_accepted: int = 0
    solutions_rejected: int = 0
    protocol_errors: int = 0


class TemplateProvider:
    """Asyncio TCP server speaking the Template Distribution Protocol for one chainstate."""

    def __init__(
        self,
        chain: Chainstate,
        mempool: Any,
        keys: TpKeys,
        config: TemplateProviderConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.chain = chain
        self.mempool = mempool
        self.keys = keys
        self.config = config or TemplateProviderConfig()
        self.stats = TemplateProviderStats()
        self._clock = clock
        self._rng = rng
        self._builders: dict[tuple[int, int], TemplateBuilder] = {}
        self._build_lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._clients: set[_Client] = set()
        self._handlers: set[asyncio.Task] = set()
        self._tasks: list[asyncio.Task] = []
        self._tip_event = asyncio.Event()
        self._mempool_event = asyncio.Event()
        self._unsubscribe: list[Callable[[], Any]] = []
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_fee_refresh = float("-inf")
        self._held_back = False
        self._empty_builder: TemplateBuilder | None = None

    # lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._serve, self.config.host, self.config.port, reuse_address=True
        )
        self._unsubscribe.append(self.chain.subscribe(self._on_tip))
        if self.mempool is not None:
            self._unsubscribe.append(self.mempool.add_listener(self._on_mempool))
        self._tasks = [
            asyncio.create_task(self._tip_loop(), name="tp-tips"),
            asyncio.create_task(self._fee_loop(), name="tp-fees"),
        ]
        log.info(
            "SV2 template provider on %s:%d, authority public key %s",
            self.config.host,
            self.port,
            self.keys.authority_public_text,
        )

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for client in list(self._clients):
            self._close(client)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._handlers:
            # Closed writers end most handlers at once; one inside a block submission
            # gets a moment to finish before it is cancelled.
            _, pending = await asyncio.wait(list(self._handlers), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def info(self) -> dict[str, Any]:
        s = self.stats
        return {
            "address": f"{self.config.host}:{self.port}" if self._server else None,
            "authority_public_key": self.keys.authority_public_text,
            "clients": len(self._clients),
            "connections": s.connections,
            "templates_sent": s.templates_sent,
            "prev_hashes_sent": s.prev_hashes_sent,
            "solutions_accepted": s.solutions_accepted,
            "solutions_rejected": s.solutions_rejected,
            "protocol_errors": s.protocol_errors,
        }

    # notifications (any thread) -----------------------------------------------------------

    def _wake(self, event: asyncio.Event) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def _on_tip(self, _change: TipChange) -> None:
        self._wake(self._tip_event)

    def _on_mempool(self, _entry: Any) -> None:
        self._wake(self._mempool_event)

    async def _tip_loop(self) -> None:
        while True:
            await self._tip_event.wait()
            self._tip_event.clear()
            if self.config.empty_first:
                await self._refresh_logged(empty=True)
            await self._refresh_logged()

    async def _fee_loop(self) -> None:
        while True:
            await self._mempool_event.wait()
            delay = self._last_fee_refresh + self.config.fee_interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._mempool_event.clear()
            self._last_fee_refresh = time.monotonic()
            await self._refresh_logged()

    async def _refresh_logged(self, empty: bool = False) -> None:
        """One failed build must not end template delivery: log it, wait for the next event."""
        try:
            await (self._refresh_empty() if empty else self._refresh())
        except Exception:
            log.exception("template provider: building templates failed")

    # templates ----------------------------------------------------------------------------

    def _builder(self, constraints: tuple[int, int]) -> TemplateBuilder:
        builder = self._builders.get(constraints)
        if builder is None:
            weight, sigops = reserved_for(*constraints)
            builder = TemplateBuilder(
                self.chain,
                self.mempool,
                clock=self._clock,
                reserved_weight=weight,
                reserved_sigops=sigops,
            )
            self._builders[constraints] = builder
        return builder

    async def _build(self, constraints: tuple[int, int]) -> BlockTemplate:
        async with self._build_lock:
            return await asyncio.to_thread(self._builder(constraints).build)

    async def _refresh_empty(self) -> None:
        """New tip, empty-first: a coinbase-only template to every client, without waiting
        for a full build in progress (the shared build lock is not taken)."""
        if self._syncing():
            return
        if self._empty_builder is None:
            self._empty_builder = TemplateBuilder(self.chain, None, clock=self._clock)
        template = await asyncio.to_thread(self._empty_builder.build)
        for client in [c for c in self._clients if c.constraints is not None]:
            if not client.closed and template.previousblockhash != client.prev_hash:
                self._offer(client, template, empty=True)

    def _syncing(self) -> bool:
        behind = self.chain.best_header.height - self.chain.height
        if behind > SYNC_SLACK_BLOCKS:
            if not self._held_back:
                log.info(
                    "template provider: holding back work while syncing (%d blocks behind)",
                    behind,
                )
            self._held_back = True
            return True
        self._held_back = False
        return False

    async def _refresh(self) -> None:
        """Offer a fresh template to every ready client (one build per constraint set)."""
        if self._syncing():
            return
        ready = [c for c in self._clients if c.constraints is not None and not c.closed]
        built: dict[tuple[int, int], BlockTemplate] = {}
        for client in ready:
            key = client.constraints
            assert key is not None
            if key not in built:
                built[key] = await self._build(key)
            if not client.closed and client.constraints == key:
                self._offer(client, built[key])
        in_use = {c.constraints for c in self._clients}
        for key in [k for k in self._builders if k not in in_use]:
            del self._builders[key]  # a client cycling its constraints must not grow this

    def _offer(
        self, client: _Client, template: BlockTemplate, force: bool = False, empty: bool = False
    ) -> None:
        """Send ``template`` if it is for a new tip, forced, or pays ``fee_delta`` more."""
        if template.previousblockhash != self.chain.tip.hash:
            return  # built before the tip moved; the tip loop sends the current one
        if template.previousblockhash != client.prev_hash:
            tid = self._remember(client, template)
            self._send(
                client,
                new_template_message(template, tid, future=True),
                set_new_prev_hash_message(template, tid),
            )
            client.prev_hash = template.previousblockhash
            self.stats.prev_hashes_sent += 1
        elif (
            force
            or (client.sent_empty and template.transactions)
            or template.coinbasevalue >= client.sent_value + self.config.fee_delta
        ):
            tid = self._remember(client, template)
            self._send(client, new_template_message(template, tid, future=False))
        else:
            return
        client.sent_value = template.coinbasevalue
        client.sent_empty = empty
        self.stats.templates_sent += 1
        log.debug(
            "template %d for %s: height %d, %d txs, value %d",
            tid,
            client.peer,
            template.height,
            len(template.transactions),
            template.coinbasevalue,
        )

    def _remember(self, client: _Client, template: BlockTemplate) -> int:
        tid = next(self._ids)
        client.templates[tid] = template
        while len(client.templates) > self.config.templates_kept:
            client.templates.popitem(last=False)
        return tid

    # connections --------------------------------------------------------------------------

    def _send(self, client: _Client, *messages: Message) -> None:
        if client.closed:
            return
        data = b"".join(client.conn.send(m) for m in messages)
        client.writer.write(data)
        transport = client.writer.transport
        if transport.get_write_buffer_size() > self.config.max_write_buffer:
            log.warning("template provider: dropping %s: not reading its data", client.peer)
            self._close(client)

    def _close(self, client: _Client) -> None:
        if not client.closed:
            client.closed = True
            client.writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        now = int(self._clock())
        cert = self.keys.certificate(now, self.config.cert_validity, self._rng)
        conn = Sv2Connection.responder(
            self.keys.static_secret, cert, rng=self._rng, max_payload=MAX_INBOUND_PAYLOAD
        )
        client = _Client(peer, conn, writer)
        self._clients.add(client)
        self.stats.connections += 1
        log.debug("template provider: %s connected", peer)
        reason = "closed by peer"
        try:
            await self._read_loop(client, reader)
        except ProtocolError as exc:
            self.stats.protocol_errors += 1
            reason = f"protocol error: {exc}"
        except _Close as exc:
            self.stats.protocol_errors += 1
            reason = str(exc)
        except TimeoutError:
            reason = "no SetupConnection within the handshake timeout"
        except (ConnectionError, OSError) as exc:
            reason = f"connection lost: {exc}"
        except Exception as exc:  # a bug must cost this connection only, never the node
            log.exception("template provider: error serving %s", peer)
            reason = f"internal error: {exc!r}"
        except asyncio.CancelledError:
            # Only stop() cancels handlers; returning (not re-raising) keeps asyncio's
            # stream callback from logging the cancellation as an error.
            reason = "template provider stopping"
        finally:
            self._clients.discard(client)
            self._close(client)
            self._handlers.discard(task)
            level = logging.WARNING if self._is_fault(reason) else logging.INFO
            log.log(level, "template provider: %s disconnected (%s)", peer, reason)
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _is_fault(reason: str) -> bool:
        return not reason.startswith(("closed by peer", "connection lost", "template provider"))

    async def _read_loop(self, client: _Client, reader: asyncio.StreamReader) -> None:
        deadline = time.monotonic() + self.config.handshake_timeout
        conn = client.conn
        while not client.closed:
            if client.setup:
                data = await reader.read(READ_CHUNK)
            else:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    data = await reader.read(READ_CHUNK)
            if not data:
                return
            reply = conn.receive_data(data)
            if reply:
                client.writer.write(reply)
            for event in conn.events():
                if client.closed:
                    break
                await self._handle(client, event)
            if not client.closed:
                await client.writer.drain()

    async def _handle(self, client: _Client, event: Any) -> None:
        if isinstance(event, HandshakeComplete):
            return
        if isinstance(event, SetupConnection):
            self._on_setup(client, event)
            return
        if not client.setup:
            raise _Close(f"{type(event).__name__} before SetupConnection")
        if isinstance(event, CoinbaseOutputConstraints):
            await self._on_constraints(client, event)
        elif isinstance(event, RequestTransactionData):
            self._on_request_transactions(client, event)
        elif isinstance(event, SubmitSolution):
            await self._on_solution(client, event)
        elif isinstance(event, UnknownMessage):
            log.debug("template provider: %s sent unknown message %s", client.peer, event.header)
        else:
            log.debug("template provider: %s sent %s; ignored", client.peer, type(event).__name__)

    def _on_setup(self, client: _Client, msg: SetupConnection) -> None:
        if client.setup:
            raise _Close("second SetupConnection")
        if msg.protocol != Protocol.TEMPLATE_DISTRIBUTION:
            self._send(client, SetupConnectionError(0, "unsupported-protocol"))
            raise _Close(f"SetupConnection for protocol {msg.protocol}, not template distribution")
        if not msg.min_version <= SV2_VERSION <= msg.max_version:
            self._send(client, SetupConnectionError(0, "protocol-version-mismatch"))
            raise _Close(f"versions {msg.min_version}..{msg.max_version} exclude {SV2_VERSION}")
        client.setup = True
        self._send(client, SetupConnectionSuccess(SV2_VERSION, 0))
        log.info(
            "template provider: %s set up (%s %s %s)",
            client.peer,
            msg.vendor,
            msg.firmware,
            msg.device_id,
        )

    async def _on_constraints(self, client: _Client, msg: CoinbaseOutputConstraints) -> None:
        size = msg.coinbase_output_max_additional_size
        sigops = msg.coinbase_output_max_additional_sigops
        if size > MAX_COINBASE_OUTPUT_SIZE or sigops > MAX_COINBASE_OUTPUT_SIGOPS:
            raise _Close(f"CoinbaseOutputConstraints too large: {size} bytes, {sigops} sigops")
        key = (size, sigops)
        if key == client.constraints:
            return
        first = client.constraints is None
        client.constraints = key
        if self._syncing():
            return  # the first tip change after the sync sends the work
        template = await self._build(key)
        if not client.closed and client.constraints == key:
            # New limits change what fits: re-send even when the fees are the same.
            self._offer(client, template, force=not first)

    def _on_request_transactions(self, client: _Client, msg: RequestTransactionData) -> None:
        template = client.templates.get(msg.template_id)
        if template is None:
            reply: Message = RequestTransactionDataError(msg.template_id, "template-id-not-found")
        elif template.previousblockhash != client.prev_hash:
            reply = RequestTransactionDataError(msg.template_id, "stale-template-id")
        else:
            txs = tuple(t.tx.serialize() for t in template.transactions)
            reply = RequestTransactionDataSuccess(msg.template_id, b"", txs)
        self._send(client, reply)

    async def _on_solution(self, client: _Client, msg: SubmitSolution) -> None:
        template = client.templates.get(msg.template_id)
        if template is None:
            log.warning(
                "template provider: %s submitted a solution for unknown template %d",
                client.peer,
                msg.template_id,
            )
            self.stats.solutions_rejected += 1
            return
        try:
            block = block_from_solution(template, msg)
        except SolutionError as exc:
            raise _Close(f"bad SubmitSolution: {exc}") from None
        result = await asyncio.to_thread(self.chain.process_block, block)
        if result.status is BlockStatus.ACCEPTED:
            self.stats.solutions_accepted += 1
            log.info(
                "template provider: block %s at height %d from %s accepted%s",
                block.header.hash_hex,
                template.height,
                client.peer,
                "" if result.tip_changed else " (not the new tip)",
            )
        else:
            self.stats.solutions_rejected += 1
            log.warning(
                "template provider: block %s from %s %s: %s %s",
                block.header.hash_hex,
                client.peer,
                result.status,
                result.reason,
                result.message,
            )

"""The module's link to the node: a Template Distribution client that is a `TemplateSource`.

Modules never touch chain state; the SV2 module gets its solo work from the node's template
provider (SV2 TDP over Noise, the node's authority key pinned when configured) and hands
solved blocks back as `SubmitSolution`. Each `NewTemplate` becomes a `WorkTemplate` whose
coinbase pays our payout script first, then the template's own outputs (e.g. the witness
commitment), as an SV2 pool would build it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from appliance.stratum_v2.jobs import DEFAULT_EXTRANONCE_SPACE, WorkTemplate
from appliance.stratum_v2.source import WorkCallback
from protocols.bitcoin.block import Block
from protocols.bitcoin.compact import compact_size, read_compact_size
from protocols.bitcoin.merkle import root_from_branch
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    CoinbaseOutputConstraints,
    NewTemplate,
    Protocol,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
    SubmitSolution,
    TemplateSetNewPrevHash,
)

__all__ = ["NodeLink", "NodeLinkError", "TdClient", "parse_outputs", "work_from_new_template"]

log = logging.getLogger("blvm.stratum_v2.node_link")

WITNESS_COMMITMENT_HEAD = bytes.fromhex("6a24aa21a9ed")
MAX_TEMPLATES = 64  # templates kept to map a late solution back to its template id
# Room we ask the TP to leave in the coinbase: one output (8 value + 1 length + up to 42
# script bytes for P2TR/P2WSH) rounded up, and the sigops of a P2PKH payout.
CONSTRAINTS = (100, 4)


class NodeLinkError(Exception):
    """The template provider refused us or spoke out of turn."""


def parse_outputs(data: bytes, count: int) -> list[TxOut]:
    """``coinbase_tx_outputs`` bytes (serialized outputs, no count prefix) as TxOuts."""
    outs, pos = [], 0
    for _ in range(count):
        value = int.from_bytes(data[pos : pos + 8], "little", signed=True)
        n, pos = read_compact_size(data, pos + 8)
        outs.append(TxOut(value, bytes(data[pos : pos + n])))
        pos += n
    if pos != len(data):
        raise ValueError("trailing bytes after the coinbase outputs")
    return outs


def work_from_new_template(
    tpl: NewTemplate,
    prev: TemplateSetNewPrevHash,
    payout_script: bytes,
    template_id: int,
    *,
    extranonce_size: int = DEFAULT_EXTRANONCE_SPACE,
) -> WorkTemplate:
    """Split the coinbase we build for `tpl` around the extranonce space."""
    outputs = [TxOut(tpl.coinbase_tx_value_remaining, payout_script)]
    outputs += parse_outputs(tpl.coinbase_tx_outputs, tpl.coinbase_tx_outputs_count)
    script_sig = tpl.coinbase_prefix + b"\0" * extranonce_size
    if len(script_sig) > 100:
        raise ValueError("coinbase scriptSig above 100 bytes: use a smaller extranonce space")
    txin = TxIn(NULL_OUTPOINT, script_sig, tpl.coinbase_tx_input_sequence)
    raw = Tx(tpl.coinbase_tx_version, [txin], outputs, tpl.coinbase_tx_locktime)
    raw_bytes = raw.serialize_without_witness()
    start = 4 + 1 + 36 + len(compact_size(len(script_sig))) + len(tpl.coinbase_prefix)
    witness = any(o.script_pubkey.startswith(WITNESS_COMMITMENT_HEAD) for o in outputs[1:])
    return WorkTemplate(
        template_id=template_id,
        prev_hash=prev.prev_hash,
        nbits=prev.n_bits,
        version=tpl.version,
        min_ntime=prev.header_timestamp,
        coinbase_prefix=raw_bytes[:start],
        coinbase_suffix=raw_bytes[start + extranonce_size :],
        extranonce_size=extranonce_size,
        merkle_path=tuple(tpl.merkle_path),
        transactions=(),  # the node keeps them; we only send header fields and coinbase back
        witness_reserved=witness,
        network_target=int.from_bytes(prev.target, "little"),
    )


class TdClient:
    """Template Distribution client: handshake, setup, then every event into a queue."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn):
        self.reader, self.writer, self.conn = reader, writer, conn
        self.events: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())

    @classmethod
    async def connect(
        cls,
        port: int,
        authority: bytes | None,
        *,
        host: str = "127.0.0.1",
        constraints: tuple[int, int] | None = CONSTRAINTS,
        vendor: str = "blvm",
        timeout: float = 10.0,
    ) -> TdClient:
        """Connect, handshake (verifying `authority` if given) and set up the connection."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        conn = Sv2Connection.initiator(authority, now=int(time.time()))
        writer.write(conn.initiate())
        client = cls(reader, writer, conn)
        try:
            if not isinstance(event := await client.next(timeout), HandshakeComplete):
                raise NodeLinkError(f"expected the Noise handshake, got {event!r}")
            client.send(
                SetupConnection(
                    protocol=Protocol.TEMPLATE_DISTRIBUTION,
                    min_version=2,
                    max_version=2,
                    flags=0,
                    endpoint_host=host,
                    endpoint_port=port,
                    vendor=vendor,
                    hardware_version="",
                    firmware="0",
                    device_id="td-client",
                )
            )
            reply = await client.next(timeout)
            if isinstance(reply, SetupConnectionError):
                raise NodeLinkError(f"template provider refused setup: {reply.error_code}")
            if not isinstance(reply, SetupConnectionSuccess):
                raise NodeLinkError(f"expected SetupConnectionSuccess, got {reply!r}")
        except BaseException:
            await client.close()
            raise
        if constraints is not None:
            client.send(CoinbaseOutputConstraints(*constraints))
        return client

    async def _pump(self) -> None:
        try:
            while data := await self.reader.read(65536):
                reply = self.conn.receive_data(data)
                if reply:
                    self.writer.write(reply)
                for event in self.conn.events():
                    self.events.put_nowait(event)
        except Exception as exc:  # handed to whoever waits for the next event
            self.events.put_nowait(exc)
        finally:
            self.events.put_nowait(None)  # end of stream

    def send(self, message) -> None:
        self.writer.write(self.conn.send(message))

    async def next(self, timeout: float | None = 10.0):
        """The next event; None once the TP closed the connection; raises what the pump hit."""
        event = await asyncio.wait_for(self.events.get(), timeout)
        if isinstance(event, Exception):
            raise event
        return event

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.writer.wait_closed()


class NodeLink:
    """A `TemplateSource` fed by the node's template provider; `await run()` keeps it linked.

    Reconnects with backoff when the node goes away (its restart must not need ours).
    """

    def __init__(
        self,
        host: str,
        port: int,
        payout_script: bytes,
        *,
        authority: bytes | None = None,
        extranonce_size: int = DEFAULT_EXTRANONCE_SPACE,
        retry: float = 2.0,
    ) -> None:
        self.host, self.port = host, port
        self.payout_script = payout_script
        self.authority = authority
        self.retry = retry
        self._extranonce_size = extranonce_size
        self._lock = threading.RLock()
        self._callbacks: list[WorkCallback] = []
        self._current: WorkTemplate | None = None
        self._pending: dict[int, NewTemplate] = {}  # future templates awaiting their prevhash
        self._templates: OrderedDict[int, WorkTemplate] = OrderedDict()
        self._prev: TemplateSetNewPrevHash | None = None
        self._client: TdClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.connected = asyncio.Event()
        self.templates_received = 0
        self.solutions_sent = 0

    # TemplateSource ----------------------------------------------------------------------

    @property
    def extranonce_size(self) -> int:
        return self._extranonce_size

    def current(self) -> WorkTemplate | None:
        return self._current

    def subscribe(self, callback: WorkCallback) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def refresh(self, force: bool = False) -> None:
        if force and self._current is not None:
            self._publish(self._current)

    def submit_block(self, block: Block) -> str | None:
        """Send the solution for `block` (from any thread); None once it is on its way."""
        header, coinbase = block.header, block.txs[0]
        root = None
        work = None
        with self._lock:
            for candidate in reversed(self._templates.values()):
                root = root_from_branch(coinbase.txid, list(candidate.merkle_path))
                if root == header.merkle_root and candidate.prev_hash == header.prev_hash:
                    work = candidate
                    break
        if work is None:
            log.warning("block %s matches no template from the node", block.hash_hex)
            return "unknown-template"
        solution = SubmitSolution(
            work.template_id, header.version, header.time, header.nonce, coinbase.serialize()
        )
        loop, client = self._loop, self._client
        if loop is None or client is None or loop.is_closed():
            return "node-link-down"
        loop.call_soon_threadsafe(client.send, solution)
        self.solutions_sent += 1
        log.info("block %s sent to the node (template %d)", block.hash_hex, work.template_id)
        return None

    # the link ----------------------------------------------------------------------------

    def _publish(self, work: WorkTemplate) -> None:
        with self._lock:
            self._current = work
            self._templates[work.template_id] = work
            while len(self._templates) > MAX_TEMPLATES:
                self._templates.popitem(last=False)
            for callback in list(self._callbacks):
                callback(work)

    def _activate(self, tpl: NewTemplate, prev: TemplateSetNewPrevHash) -> None:
        work = work_from_new_template(
            tpl, prev, self.payout_script, tpl.template_id, extranonce_size=self._extranonce_size
        )
        self._publish(work)

    def handle(self, event: Any) -> None:
        if isinstance(event, NewTemplate):
            self.templates_received += 1
            if event.future_template or self._prev is None:
                self._pending[event.template_id] = event
            else:
                self._activate(event, self._prev)
        elif isinstance(event, TemplateSetNewPrevHash):
            self._prev = event
            tpl = self._pending.pop(event.template_id, None)
            self._pending.clear()
            if tpl is not None:
                self._activate(tpl, event)
        else:
            log.debug("ignoring %r from the template provider", event)

    async def run(self) -> None:
        """Stay linked until `close()`: connect, follow templates, reconnect on loss."""
        self._loop = asyncio.get_running_loop()
        while not self._closed:
            try:
                self._client = await TdClient.connect(
                    self.port, self.authority, host=self.host, vendor="blvm-stratum-v2"
                )
                log.info("linked to the node's template provider at %s:%d", self.host, self.port)
                self.connected.set()
                while (event := await self._client.next(None)) is not None:
                    self.handle(event)
                log.warning("template provider closed the connection")
            except (TimeoutError, OSError, NodeLinkError, ValueError) as exc:
                log.warning("template provider %s:%d: %s", self.host, self.port, exc)
            except Exception as exc:  # noise/framing errors from the sans-IO connection
                log.warning("template provider link failed: %r", exc)
            finally:
                self.connected.clear()
                if self._client is not None:
                    await self._client.close()
                    self._client = None
                self._pending.clear()
                self._prev = None
            if not self._closed:
                await asyncio.sleep(self.retry)

    async def close(self) -> None:
        self._closed = True
        if self._client is not None:
            await self._client.close()

    def status(self) -> dict[str, Any]:
        return {
            "node_tp": f"{self.host}:{self.port}",
            "connected": self.connected.is_set(),
            "templates_received": self.templates_received,
            "solutions_sent": self.solutions_sent,
            "current_template": self._current.template_id if self._current else None,
        }

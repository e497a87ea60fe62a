"""Template-provider test helpers: what a TD client does with a NewTemplate, and a client.

``client_coinbase`` builds the coinbase the way an SV2 pool / JD client does (BIP34 prefix
from the template, then its extranonce; its payout output first, the template's outputs
after); ``solve_template`` grinds a regtest header over it; ``TdClient`` is an asyncio
Template Distribution client on our sans-IO ``Sv2Connection`` (the Noise initiator).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from node.mining.assembler import WITNESS_RESERVED_VALUE
from protocols.bitcoin.block import BlockHeader
from protocols.bitcoin.compact import read_compact_size
from protocols.bitcoin.merkle import root_from_branch
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    CoinbaseOutputConstraints,
    NewTemplate,
    Protocol,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSolution,
    TemplateSetNewPrevHash,
)

PAYOUT_SCRIPT = b"\x00\x14" + b"\x22" * 20  # a P2WPKH the tests' "pool" pays itself


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


def client_coinbase(
    tpl: NewTemplate,
    extranonce: bytes = b"\x01\x02\x03\x04\x05\x06\x07\x08",
    payout: bytes = PAYOUT_SCRIPT,
    *,
    with_witness: bool = True,
) -> Tx:
    outputs = [TxOut(tpl.coinbase_tx_value_remaining, payout)]
    outputs += parse_outputs(tpl.coinbase_tx_outputs, tpl.coinbase_tx_outputs_count)
    txin = TxIn(NULL_OUTPOINT, tpl.coinbase_prefix + extranonce, tpl.coinbase_tx_input_sequence)
    if with_witness and tpl.coinbase_tx_outputs_count:
        txin.witness = [WITNESS_RESERVED_VALUE]
    return Tx(tpl.coinbase_tx_version, [txin], outputs, tpl.coinbase_tx_locktime)


def solve_template(
    tpl: NewTemplate, prev: TemplateSetNewPrevHash, coinbase: Tx, ntime: int | None = None
) -> SubmitSolution:
    """Find a nonce at the template's (regtest) target; the solution a miner would send."""
    root = root_from_branch(coinbase.txid, list(tpl.merkle_path))
    ntime = prev.header_timestamp if ntime is None else ntime
    header = BlockHeader(tpl.version, prev.prev_hash, root, ntime, prev.n_bits, 0)
    target = bits_to_target(prev.n_bits).target
    assert int.from_bytes(prev.target, "little") == target
    for nonce in range(1 << 20):
        header.nonce = nonce
        if int.from_bytes(header.hash, "little") <= target:
            break
    else:
        raise AssertionError("no nonce found; not a regtest target?")
    return SubmitSolution(tpl.template_id, tpl.version, ntime, nonce, coinbase.serialize())


class TdClient:
    """Template Distribution client for tests: handshake, setup, then events in a queue."""

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
        constraints: tuple[int, int] | None = (100, 4),
    ) -> TdClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = Sv2Connection.initiator(authority, now=int(time.time()))
        writer.write(conn.initiate())
        client = cls(reader, writer, conn)
        assert isinstance(await client.next(), HandshakeComplete)
        client.send(
            SetupConnection(
                protocol=Protocol.TEMPLATE_DISTRIBUTION,
                min_version=2,
                max_version=2,
                flags=0,
                endpoint_host="127.0.0.1",
                endpoint_port=port,
                vendor="blvm-tests",
                hardware_version="",
                firmware="0",
                device_id="td-client",
            )
        )
        assert isinstance(await client.next(), SetupConnectionSuccess)
        if constraints is not None:
            client.send(CoinbaseOutputConstraints(*constraints))
        return client

    async def _pump(self) -> None:
        try:
            while data := await self.reader.read(65536):
                reply = self.conn.receive_data(data)
                if reply:
                    self.writer.write(reply)
                while (event := self.conn.next_event()) is not None:
                    self.events.put_nowait(event)
        except Exception as exc:  # handed to whoever waits for the next event
            self.events.put_nowait(exc)
        finally:
            self.events.put_nowait(None)  # end of stream

    def send(self, message) -> None:
        self.writer.write(self.conn.send(message))

    async def next(self, timeout: float = 10.0):
        """The next event; None once the TP closed the connection; raises what the pump hit."""
        event = await asyncio.wait_for(self.events.get(), timeout)
        if isinstance(event, Exception):
            raise event
        return event

    async def expect(self, kind: type, timeout: float = 10.0):
        event = await self.next(timeout)
        assert isinstance(event, kind), f"expected {kind.__name__}, got {event!r}"
        return event

    async def work(self, timeout: float = 10.0) -> tuple[NewTemplate, TemplateSetNewPrevHash]:
        """A future NewTemplate and the SetNewPrevHash that activates it."""
        tpl = await self.expect(NewTemplate, timeout)
        assert tpl.future_template
        prev = await self.expect(TemplateSetNewPrevHash, timeout)
        assert prev.template_id == tpl.template_id
        return tpl, prev

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.writer.wait_closed()

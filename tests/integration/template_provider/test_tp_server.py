"""The template provider over real TCP + Noise, driven by our own SV2 client code.

A regtest chainstate + mempool + TemplateProvider run in this process; `TdClient` (the
sans-IO `Sv2Connection` as initiator, pinning the TP's authority key) connects like a pool
would. Blocks mined from the templates go back as SubmitSolution and must become the tip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from pathlib import Path

import pytest

from node.chain.chainstate import BlockStatus
from node.mining.template_provider import TemplateProvider, TemplateProviderConfig
from node.mining.tp_keys import load_or_create_keys
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.errors import CertificateError
from protocols.sv2.messages import (
    CoinbaseOutputConstraints,
    NewTemplate,
    RequestTransactionData,
    RequestTransactionDataError,
    RequestTransactionDataSuccess,
    SetupConnection,
    SetupConnectionError,
    SubmitSolution,
    TemplateSetNewPrevHash,
)
from protocols.sv2.noise import ACT1_SIZE, ACT2_SIZE
from tests.unit.mempool.mempool_tools import block_on, mine, spend
from tests.unit.template_provider.tp_tools import TdClient, client_coinbase, solve_template

QUIET = 0.5  # seconds in which "nothing arrives" is checked


def _provider(env, tmp_path: Path, **config) -> TemplateProvider:
    keys = load_or_create_keys(tmp_path / "tp")
    config.setdefault("fee_interval", 0.2)
    return TemplateProvider(env.chain, env.pool, keys, TemplateProviderConfig(**config))


async def _quiet(client: TdClient) -> None:
    with pytest.raises(TimeoutError):
        event = await client.next(QUIET)
        raise AssertionError(f"unexpected {event!r}")


async def _session(port: int):
    """A raw Noise session to the TP (no SetupConnection yet)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = Sv2Connection.initiator(None, now=0)
    writer.write(conn.initiate())
    conn.receive_data(await reader.readexactly(ACT2_SIZE), now=int(time.time()))
    assert isinstance(conn.next_event(), HandshakeComplete)
    return reader, writer, conn


async def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def test_tp_serves_template_and_connects_submitted_block(tp_env, tmp_path: Path) -> None:
    async def scenario() -> None:
        tp = _provider(tp_env, tmp_path)
        await tp.start()
        try:
            client = await TdClient.connect(tp.port, tp.keys.authority_public)
            tpl, prev = await client.work()
            assert prev.prev_hash == tp_env.chain.tip.hash
            height = tp_env.chain.height
            solution = solve_template(tpl, prev, client_coinbase(tpl))
            client.send(solution)
            # The block goes to the chainstate, and the new tip comes back as new work.
            tpl2, prev2 = await client.work()
            assert tp_env.chain.height == height + 1
            assert prev2.prev_hash == tp_env.chain.tip.hash != prev.prev_hash
            assert tpl2.template_id != tpl.template_id
            await _wait(lambda: tp.stats.solutions_accepted == 1)
            # A block from elsewhere (a peer) also pushes new work.
            mine(tp_env.chain, extra=b"peer")
            _, prev3 = await client.work()
            assert prev3.prev_hash == tp_env.chain.tip.hash
            # The old template is stale now; unknown ids are refused.
            client.send(RequestTransactionData(tpl2.template_id))
            err = await client.expect(RequestTransactionDataError)
            assert err.error_code == "stale-template-id"
            client.send(RequestTransactionData(999_999))
            err = await client.expect(RequestTransactionDataError)
            assert err.error_code == "template-id-not-found"
            await client.close()
        finally:
            await tp.stop()

    asyncio.run(scenario())


def test_tp_fee_delta_resends_and_serves_transactions(tp_env, tmp_path: Path) -> None:
    async def scenario() -> None:
        tp = _provider(tp_env, tmp_path, fee_delta=10_000)
        await tp.start()
        try:
            client = await TdClient.connect(tp.port, tp.keys.authority_public)
            first, _ = await client.work()
            small, _ = spend(tp_env.mature(1), 1, fee=3_000)
            assert tp_env.pool.accept(small).accepted
            await _quiet(client)  # 3,000 sat is below the 10,000 sat delta
            big, _ = spend(tp_env.mature(1), 1, fee=9_000)
            assert tp_env.pool.accept(big).accepted
            update = await client.expect(NewTemplate)
            assert not update.future_template
            assert update.coinbase_tx_value_remaining == first.coinbase_tx_value_remaining + 12_000
            client.send(RequestTransactionData(update.template_id))
            data = await client.expect(RequestTransactionDataSuccess)
            assert data.template_id == update.template_id
            assert sorted(data.transaction_list) == sorted([small.serialize(), big.serialize()])
            # Mining the fee-updated template includes both transactions.
            # A non-future template works on the current SetNewPrevHash (same tip).
            prev = TemplateSetNewPrevHash(
                update.template_id,
                tp_env.chain.tip.hash,
                int(time.time()),
                0x207FFFFF,
                (0x7FFFFF << 232).to_bytes(32, "little"),
            )
            client.send(solve_template(update, prev, client_coinbase(update)))
            await client.work()
            block = tp_env.chain.get_block(tp_env.chain.tip.hash)
            # New coinbase constraints: the template is rebuilt and re-sent at once.
            client.send(CoinbaseOutputConstraints(2_000, 20))
            resent = await client.expect(NewTemplate)
            assert not resent.future_template
            assert {t.txid for t in block.txs[1:]} == {small.txid, big.txid}
            assert len(tp_env.pool) == 0
            await client.close()
        finally:
            await tp.stop()

    asyncio.run(scenario())


def test_tp_garbage_on_one_connection_leaves_others_alone(
    tp_env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="node.mining.template_provider")
    rnd = random.Random(2026)

    async def garbage(port: int, blob: bytes, *, handshake: bool) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if handshake:
            conn = Sv2Connection.initiator(None, now=0)
            writer.write(conn.initiate())
            conn.receive_data(await reader.readexactly(ACT2_SIZE), now=int(time.time()))
        writer.write(blob)
        await writer.drain()
        # The TP closes the connection (or keeps waiting for a full frame): never hangs us.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(), 2)
        writer.close()

    async def scenario() -> None:
        tp = _provider(tp_env, tmp_path, handshake_timeout=1.0)
        await tp.start()
        try:
            good = await TdClient.connect(tp.port, tp.keys.authority_public)
            await good.work()
            blobs = [rnd.randbytes(rnd.choice([1, 6, ACT1_SIZE, 200, 5000])) for _ in range(12)]
            await asyncio.gather(
                *(garbage(tp.port, b, handshake=i % 2 == 1) for i, b in enumerate(blobs))
            )
            # Set-up sessions sending random frames of TD (and other) types: each one is
            # ignored or closes only its own connection.
            for i in range(24):
                reader, writer, conn = await _session(tp.port)
                writer.write(conn.send(SetupConnection(2, 2, 2, 0, "", 0, "", "", "", "")))
                msg_type = 0x70 + i % 7 if i < 14 else rnd.randrange(256)
                payload = rnd.randbytes(rnd.choice([0, 3, 6, 40, 300]))
                writer.write(conn.send_frame(0, msg_type, payload))
                with contextlib.suppress(TimeoutError, ConnectionError):
                    await asyncio.wait_for(reader.read(65536), 0.3)
                writer.close()
            # Well-formed but out of order / wrong protocol: closed with a reason.
            reader, writer, conn = await _session(tp.port)
            writer.write(conn.send(RequestTransactionData(1)))
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no answer
            writer.close()
            reader, writer, conn = await _session(tp.port)
            writer.write(conn.send(SetupConnection(0, 2, 2, 0, "", 0, "", "", "", "")))
            conn.receive_data(await asyncio.wait_for(reader.read(4096), 5))
            assert isinstance(conn.next_event(), SetupConnectionError)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            await _wait(lambda: len(tp._clients) == 1)
            assert tp.stats.protocol_errors >= 2
            # The good client is untouched: it still gets new work and can submit blocks.
            mine(tp_env.chain, extra=b"after-garbage")
            tpl, prev = await good.work()
            good.send(solve_template(tpl, prev, client_coinbase(tpl)))
            await good.work()
            await _wait(lambda: tp.stats.solutions_accepted == 1)
            await good.close()
        finally:
            await tp.stop()

    asyncio.run(scenario())
    # Each closed connection is logged with its reason, as a warning.
    faults = [r for r in caplog.records if r.levelno == logging.WARNING]
    reasons = " ".join(r.getMessage() for r in faults)
    assert "protocol error: MAC check failed" in reasons
    assert "RequestTransactionData before SetupConnection" in reasons
    assert "not template distribution" in reasons


def test_tp_certificate_pins_the_persisted_authority_key(tp_env, tmp_path: Path) -> None:
    async def scenario() -> None:
        tp = _provider(tp_env, tmp_path)
        await tp.start()
        try:
            with pytest.raises(CertificateError):
                await TdClient.connect(tp.port, bytes.fromhex("79be667e" + "f9dcbbac" * 7))
            # Same datadir, same key: pools keep their configured public key across restarts.
            again = load_or_create_keys(tmp_path / "tp")
            client = await TdClient.connect(tp.port, again.authority_public)
            await client.work()
            await client.close()
        finally:
            await tp.stop()

    asyncio.run(scenario())


def test_tp_submitted_invalid_block_is_rejected_not_fatal(tp_env, tmp_path: Path) -> None:
    async def scenario() -> None:
        tp = _provider(tp_env, tmp_path)
        await tp.start()
        try:
            client = await TdClient.connect(tp.port, tp.keys.authority_public)
            tpl, prev = await client.work()
            good = solve_template(tpl, prev, client_coinbase(tpl))
            # Coinbase claiming one satoshi too much: bad-cb-amount, the tip stays.
            greedy = client_coinbase(tpl)
            greedy.outputs[0].value += 1
            greedy.invalidate()
            bad = solve_template(tpl, prev, greedy)
            tip = tp_env.chain.tip.hash
            client.send(bad)
            await _wait(lambda: tp.stats.solutions_rejected == 1)
            assert tp_env.chain.tip.hash == tip
            client.send(
                SubmitSolution(
                    tpl.template_id,
                    good.version,
                    good.header_timestamp,
                    good.header_nonce,
                    good.coinbase_tx,
                )
            )
            await client.work()
            assert tp_env.chain.get_block(tp_env.chain.tip.hash) is not None
            await _wait(lambda: tp.stats.solutions_accepted == 1)
            await client.close()
        finally:
            await tp.stop()

    asyncio.run(scenario())


def test_tp_holds_back_work_while_the_node_syncs(tp_env, tmp_path: Path) -> None:
    chain = tp_env.chain
    blocks, parent = [], chain.tip
    for i in range(8):
        block = block_on(
            parent.hash if i == 0 else blocks[-1].hash,
            parent.height + 1 + i,
            parent.time + 1 + i,
            extra=b"sync",
        )
        blocks.append(block)
    assert chain.process_headers([b.header for b in blocks]).accepted == 8

    async def scenario() -> None:
        tp = _provider(tp_env, tmp_path)
        await tp.start()
        try:
            client = await TdClient.connect(tp.port, tp.keys.authority_public)
            await _quiet(client)  # 8 blocks behind the best header: no work yet
            for block in blocks:
                assert chain.process_block(block).status is BlockStatus.ACCEPTED
            _, prev = await client.work()
            assert prev.prev_hash == blocks[-1].hash == chain.tip.hash
            await client.close()
        finally:
            await tp.stop()

    asyncio.run(scenario())


def test_tp_empty_first_then_full_template_on_new_tip(tp_env, tmp_path: Path) -> None:
    async def scenario() -> None:
        tp = _provider(tp_env, tmp_path, empty_first=True, fee_delta=10**8)
        await tp.start()
        try:
            tx, _ = spend(tp_env.mature(1), 1, fee=4_000)
            assert tp_env.pool.accept(tx).accepted
            client = await TdClient.connect(tp.port, tp.keys.authority_public)
            first, _ = await client.work()  # on connect: the full template, as usual
            assert len(first.merkle_path) == 1
            mine(tp_env.chain, extra=b"elsewhere")  # keeps our tx in the mempool
            empty, prev = await client.work()
            assert empty.merkle_path == () and prev.prev_hash == tp_env.chain.tip.hash
            full = await client.expect(NewTemplate)  # despite the huge fee delta
            assert not full.future_template and len(full.merkle_path) == 1
            assert full.coinbase_tx_value_remaining == empty.coinbase_tx_value_remaining + 4_000
            # Either template mines a valid block on the new tip.
            client.send(solve_template(empty, prev, client_coinbase(empty)))
            await client.work()
            assert len(tp_env.chain.get_block(tp_env.chain.tip.hash).txs) == 1
            await client.close()
        finally:
            await tp.stop()

    asyncio.run(scenario())

"""Share-server worker processes over a real regtest chain, driven by our SV2 client.

Two workers share one port; miners land on both; channel ids and extranonce prefixes are
unique across them; accepted shares reach the parent's share sink; a block found on a worker
is connected by the parent's chain and every miner gets the new tip. A worker killed with
SIGKILL is replaced, its miners reconnect, and the other worker's miners never notice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from appliance.stratum_v2.server import Sv2ServerConfig
from appliance.stratum_v2.upstream.base import UpstreamShare
from appliance.stratum_v2.workers import WorkerPool
from protocols.sv2 import keys as sv2keys
from protocols.sv2.messages import SetNewPrevHash, SetupConnectionSuccess, SubmitSharesSuccess
from tests.integration.stratum_v2.sv2srv_client import MAX, Sv2TestClient, mine

NETWORK = 2**255  # regtest 0x207fffff is about 2^255
MINERS = 16  # all on one worker by chance: 2^-15


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _miner(port: int, authority: bytes, name: str):
    client = await Sv2TestClient.connect(port, authority)
    assert isinstance(await client.setup(), SetupConnectionSuccess)
    view = await client.open_extended(name)
    await client.await_work(view)
    return client, view


def test_two_workers_share_a_port_and_mine_a_block(node) -> None:
    chain, source, keys = node
    authority = sv2keys.decode_authority_public_key(keys.authority_public)
    forwarded: list[UpstreamShare] = []

    async def scenario() -> None:
        config = Sv2ServerConfig(host="127.0.0.1", port=0, ack_batch=1)
        pool = WorkerPool(
            source, keys.static_secret, keys.certificate, config, 2, share_sink=forwarded.append
        )
        await pool.start()
        miners = []
        try:
            miners = [await _miner(pool.port, authority, f"m{i}") for i in range(MINERS)]
            ids = [view.channel_id for _, view in miners]
            prefixes = [view.extranonce_prefix for _, view in miners]
            assert len(set(ids)) == MINERS and len(set(prefixes)) == MINERS
            assert {i % 2 for i in ids} == {0, 1}  # worker 0 hands out odd ids, worker 1 even
            await _until(lambda: pool.status()["connections"] == MINERS, 5, "worker reports")
            per_worker = [w["connections"] for w in pool.status()["share_server_workers"]]
            assert sorted(per_worker)[0] > 0 and sum(per_worker) == MINERS

            # One share each (not a block): acknowledged by its worker, forwarded to the sink.
            for client, view in miners:
                share, _ = mine(view, MAX, above=NETWORK)
                client.send(share)
                ack = await client.expect(SubmitSharesSuccess, channel_id=view.channel_id)
                assert ack.last_sequence_number == share.sequence_number
            await _until(lambda: len(forwarded) == MINERS, 5, "shares at the parent's sink")
            await _until(lambda: pool.status()["shares_accepted"] == MINERS, 5, "share counts")
            template_id = source.current().template_id
            assert {s.template_id for s in forwarded} == {template_id}
            sent = {s.extranonce[:4] for s in forwarded}
            assert sent == {p[:4] for p in prefixes}

            # A block on one worker is connected by the parent's chain; everyone moves on.
            client, view = miners[5]
            block_share, _ = mine(view, NETWORK, start=10_000)
            client.send(block_share)
            await _until(lambda: chain.tip.height == 1, 15, "the block on the chain")
            await _until(lambda: pool.counters.blocks_accepted == 1, 5, "the block verdict")
            for other, _ in miners:
                prev = await other.expect(SetNewPrevHash, timeout=10)
                assert prev.prev_hash == chain.tip.hash
            await _until(lambda: pool.status()["blocks_found"] == 1, 5, "the worker's report")
        finally:
            for client, _ in miners:
                client.close()
            await pool.close()

    asyncio.run(scenario())


def test_a_killed_worker_is_replaced_and_the_other_keeps_mining(node) -> None:
    chain, source, keys = node
    authority = sv2keys.decode_authority_public_key(keys.authority_public)

    async def scenario() -> None:
        config = Sv2ServerConfig(host="127.0.0.1", port=0, ack_batch=1)
        pool = WorkerPool(source, keys.static_secret, keys.certificate, config, 2)
        await pool.start()
        miners = []
        try:
            miners = [await _miner(pool.port, authority, f"m{i}") for i in range(MINERS)]
            before = pool.status()["share_server_workers"]
            victim = before[0]
            os.kill(victim["pid"], signal.SIGKILL)
            await _until(lambda: pool.counters.worker_restarts == 1, 15, "the restart")
            await _until(
                lambda: (
                    pool.status()["share_server_workers"][0]["alive"]
                    and pool.status()["share_server_workers"][0]["pid"] != victim["pid"]
                ),
                15,
                "the replacement worker",
            )
            # Miners of the surviving worker (even channel ids) keep mining.
            survivors = [(c, v) for c, v in miners if v.channel_id % 2 == 0]
            assert survivors
            for client, view in survivors:
                share, _ = mine(view, MAX, above=NETWORK)
                client.send(share)
                await client.expect(SubmitSharesSuccess, channel_id=view.channel_id)
            # Newcomers are served by both; the replacement's ids are a new range.
            old_ids = {v.channel_id for _, v in miners}
            await asyncio.sleep(0.3)
            newcomers = [await _miner(pool.port, authority, f"n{i}") for i in range(MINERS)]
            miners += newcomers
            new_ids = {v.channel_id for _, v in newcomers}
            assert not new_ids & old_ids and len(new_ids) == MINERS
            for client, view in newcomers:
                share, _ = mine(view, MAX, above=NETWORK)
                client.send(share)
                await client.expect(SubmitSharesSuccess, channel_id=view.channel_id)
            assert chain.tip.height == 0
        finally:
            for client, _ in miners:
                client.close()
            await pool.close()

    asyncio.run(scenario())

"""Miner (SV2) -> our downstream server -> our SV1 upstream client -> our SV1 listener as pool.

Real sockets on both hops. The SV1 "pool" mines on a real regtest Chainstate: a block found
two hops down connects there only if coinb1 ‖ extranonce1 ‖ padding ‖ extranonce ‖ coinb2
and the rolled version (sent as BIP310 version bits) were mapped back exactly. A share that
rolled a bit the pool did not grant (BIP323 allows it, BIP320 does not) stays downstream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import NodeTemplateSource
from appliance.stratum_v2.upstream.failover import HealthPolicy
from appliance.stratum_v2.upstream.sv1_pool import BIP320_MASK, Sv1PoolConfig, Sv1PoolUpstream
from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from protocols.sv2.messages import SubmitSharesSuccess
from tests.helpers.sri import failover_proxy, until
from tests.integration.stratum_v2.sv2srv_client import MAX, mine

PAYOUT = bytes.fromhex("0014") + bytes(20)
SPACE = 8
NETWORK = 2**255


def _rolled(view, version: int):
    return dataclasses.replace(view, job=dataclasses.replace(view.job, version=version))


def test_sv1_pool_gets_shares_with_version_bits_and_a_block(tmp_path: Path) -> None:
    chain = Chainstate.open(tmp_path / "pool", REGTEST, script_threads=1)
    source = NodeTemplateSource(chain, PAYOUT)
    pool_keys = load_or_create_keys(tmp_path / "pool-keys", now=int(time.time()))
    proxy_keys = load_or_create_keys(tmp_path / "proxy-keys", now=int(time.time()))

    async def scenario() -> None:
        pool = Sv2Server(
            source,
            pool_keys.static_secret,
            pool_keys.certificate,
            Sv2ServerConfig(host="127.0.0.1", port=0, sv1_port=0, sv1_initial_hashrate=0.0),
        )
        await pool.start()
        upstream = Sv1PoolUpstream(Sv1PoolConfig("127.0.0.1", pool.sv1_port, "proxy.w"), SPACE)
        try:
            async with failover_proxy(
                [upstream], SPACE, HealthPolicy(tick=0.05), proxy_keys
            ) as rig:
                failover = rig.failover
                await until(lambda: failover.current() is not None, what="pool work")
                assert upstream.version_mask == BIP320_MASK
                # our SV1 listener offers exactly 8 extranonce2 bytes: no padding needed
                assert upstream.conn.extranonce2_size == SPACE and upstream.target > NETWORK
                ext = await rig.open_miner("miner")
                client = rig.client
                await client.await_work(ext)
                assert ext.prevhash.prev_hash == chain.tip.hash
                base = ext.job.version

                # plain share, then one rolling a BIP320 bit: both accepted by the SV1 pool
                share, _ = mine(ext, MAX, above=NETWORK, extranonce=b"\1\1\1\1")
                client.send(share)
                await client.expect(SubmitSharesSuccess, channel_id=ext.channel_id)
                share, _ = mine(_rolled(ext, base | 0x00004000), MAX, above=NETWORK)
                client.send(share)
                await client.expect(SubmitSharesSuccess, channel_id=ext.channel_id)
                await until(lambda: upstream.stats.accepted == 2, what="SV1 pool accepts")
                assert upstream.stats.rejected == 0

                # bit 0x20 is in BIP323's mask (downstream accepts) but not granted upstream
                share, _ = mine(_rolled(ext, base | 0x20), MAX, above=NETWORK)
                client.send(share)
                await client.expect(SubmitSharesSuccess, channel_id=ext.channel_id)
                await until(lambda: upstream.stats.rejected == 1, what="mask check")
                assert upstream.stats.rejects == {"version-outside-pool-mask": 1}
                assert upstream.stats.submitted == 2

                # a block with a rolled version: the SV1 pool's chain connects it
                share, _ = mine(_rolled(ext, base | 0x00010000), NETWORK // 2, extranonce=b"\7" * 4)
                client.send(share)
                await until(lambda: chain.tip.height == 1, what="block on the SV1 pool's chain")
                assert chain.get_block(chain.tip.hash).header.version == base | 0x00010000
                await client.await_work(ext)
                assert ext.prevhash.prev_hash == chain.tip.hash
        finally:
            await pool.close()

    try:
        asyncio.run(scenario())
    finally:
        source.close()
        chain.close()

"""Miner -> our downstream server -> our SV2 upstream client -> our SV2 server as the pool.

Real sockets and real Noise on both hops; the "pool" mines on a real regtest Chainstate, so a
block found by the miner two hops down is connected by the pool's chain only if the
extranonce mapping (channel prefix, padding, pool prefix) rebuilt the very same coinbase.
Then the pool goes away: the failover switches to solo (a second chain, our own templates),
and back to the pool when it listens again.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import NodeTemplateSource
from appliance.stratum_v2.upstream.base import UpstreamShare, UpstreamState
from appliance.stratum_v2.upstream.failover import FailoverSource, HealthPolicy
from appliance.stratum_v2.upstream.solo import SoloUpstream
from appliance.stratum_v2.upstream.sv2_pool import Sv2PoolConfig, Sv2PoolUpstream
from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from protocols.sv2.messages import SubmitSharesSuccess
from tests.helpers.sri import failover_proxy, until
from tests.integration.stratum_v2.sv2srv_client import MAX, mine

PAYOUT = bytes.fromhex("0014") + bytes(20)
SOLO_PAYOUT = bytes.fromhex("0014") + b"\x11" * 20
SPACE = 8
NETWORK = 2**255  # about the regtest target


def test_shares_and_a_block_flow_to_the_pool_then_failover_and_back(tmp_path: Path) -> None:
    pool_chain = Chainstate.open(tmp_path / "pool", REGTEST, script_threads=1)
    solo_chain = Chainstate.open(tmp_path / "solo", REGTEST, script_threads=1)
    pool_source = NodeTemplateSource(pool_chain, PAYOUT)
    solo_source = NodeTemplateSource(solo_chain, SOLO_PAYOUT, extranonce_size=SPACE)
    pool_keys = load_or_create_keys(tmp_path / "pool-keys", now=int(time.time()))
    proxy_keys = load_or_create_keys(tmp_path / "proxy-keys", now=int(time.time()))

    async def start_pool(port: int = 0) -> Sv2Server:
        config = Sv2ServerConfig(host="127.0.0.1", port=port, ack_interval=0.05)
        pool = Sv2Server(pool_source, pool_keys.static_secret, pool_keys.certificate, config)
        await pool.start()
        return pool

    async def scenario() -> None:
        pool = await start_pool()
        upstream = Sv2PoolUpstream(
            Sv2PoolConfig(
                "127.0.0.1",
                pool.port,
                pool_keys.authority_public,  # base58, checked against the certificate
                "proxy.worker",
                nominal_hash_rate=0.0,  # unknown: the pool starts at its easiest target
                connect_timeout=3,
            ),
            SPACE,
        )
        solo = SoloUpstream(solo_source, SPACE)
        policy = HealthPolicy(connect_timeout=3, no_job_timeout=600, retry_after=0.5, tick=0.05)
        try:
            async with failover_proxy([upstream, solo], SPACE, policy, proxy_keys) as rig:
                failover = rig.failover
                await until(lambda: failover.current() is not None, what="pool work")
                assert failover.active.upstream is upstream
                assert upstream.pool_extranonce_size == 16  # pool: 20 - 4 for its channel prefix
                ext = await rig.open_miner("miner.ext")
                client = rig.client
                assert len(ext.extranonce_prefix) == 4 and ext.extranonce_size == SPACE - 4
                await client.await_work(ext)
                assert ext.prevhash.prev_hash == pool_chain.tip.hash

                # Shares below the network target: accepted downstream, forwarded, acked upstream.
                nonce = 0
                for _ in range(3):
                    share, _ = mine(ext, MAX, above=NETWORK, start=nonce, extranonce=b"\1\2\3\4")
                    nonce = share.nonce + 1
                    client.send(share)
                    await client.expect(SubmitSharesSuccess, channel_id=ext.channel_id)
                await until(lambda: upstream.stats.accepted == 3, what="pool acks")
                assert pool.counters.shares_accepted == 3 and upstream.stats.rejected == 0
                # the same share again, straight to the upstream: the pool's reject is counted
                again = UpstreamShare(
                    next(reversed(upstream._templates)),
                    ext.extranonce_prefix + b"\1\2\3\4",
                    share.version,
                    share.ntime,
                    share.nonce,
                    0,
                )
                assert upstream.submit_share(again)
                await until(lambda: upstream.stats.rejected == 1, what="pool reject")
                assert upstream.stats.rejects == {"duplicate-share": 1}

                # A block two hops down: the pool's chain connects it.
                share, _ = mine(ext, NETWORK // 2, start=nonce, extranonce=b"\5\6\7\x08")
                client.send(share)
                await until(lambda: pool_chain.tip.height == 1, what="block on the pool chain")
                assert pool.counters.blocks_accepted == 1
                await client.await_work(ext)
                assert ext.prevhash.prev_hash == pool_chain.tip.hash

                # The pool goes away: solo (our own node) takes over, clean job on its tip.
                port = pool.port
                await pool.close()
                await client.await_work(ext)
                assert failover.active.upstream is solo
                assert ext.prevhash.prev_hash == solo_chain.tip.hash
                share, _ = mine(ext, NETWORK // 2, extranonce=b"\x09\x09\x09\x09")
                client.send(share)
                await until(lambda: solo_chain.tip.height == 1, what="solo block")
                await client.await_work(ext)

                # The pool is back: the primary wins again.
                pool = await start_pool(port)
                await client.await_work(ext)
                assert failover.active.upstream is upstream
                assert upstream.state is UpstreamState.MINING
                assert ext.prevhash.prev_hash == pool_chain.tip.hash
                assert [h[1] for h in failover.counters.history if h[2] == "active"] == [
                    upstream.name,
                    solo.name,
                    upstream.name,
                ]
        finally:
            await pool.close()

    try:
        asyncio.run(scenario())
    finally:
        pool_source.close()
        solo_source.close()
        pool_chain.close()
        solo_chain.close()


def test_wrong_pool_authority_key_is_refused_and_solo_takes_over(tmp_path: Path) -> None:
    pool_chain = Chainstate.open(tmp_path / "pool", REGTEST, script_threads=1)
    solo_chain = Chainstate.open(tmp_path / "solo", REGTEST, script_threads=1)
    pool_source = NodeTemplateSource(pool_chain, PAYOUT)
    solo_source = NodeTemplateSource(solo_chain, SOLO_PAYOUT, extranonce_size=SPACE)
    pool_keys = load_or_create_keys(tmp_path / "pool-keys", now=int(time.time()))
    other_keys = load_or_create_keys(tmp_path / "other-keys", now=int(time.time()))

    async def scenario() -> None:
        config = Sv2ServerConfig(host="127.0.0.1", port=0)
        pool = Sv2Server(pool_source, pool_keys.static_secret, pool_keys.certificate, config)
        await pool.start()
        upstream = Sv2PoolUpstream(
            Sv2PoolConfig("127.0.0.1", pool.port, other_keys.authority_public, "w"), SPACE
        )
        solo = SoloUpstream(solo_source, SPACE)
        failover = FailoverSource([upstream, solo], SPACE, HealthPolicy(tick=0.05))
        driver = asyncio.create_task(failover.run())
        try:
            await until(lambda: failover.current() is not None, what="solo work")
            assert failover.active.upstream is solo
            assert "CertificateError" in (upstream.stats.last_error or "")
            assert "CertificateError" in (failover.slots[0].last_reason or "")
            assert pool.counters.connections_total >= 1 and upstream.channel_id is None
        finally:
            await failover.close()
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
            await pool.close()

    try:
        asyncio.run(scenario())
    finally:
        pool_source.close()
        solo_source.close()
        pool_chain.close()
        solo_chain.close()

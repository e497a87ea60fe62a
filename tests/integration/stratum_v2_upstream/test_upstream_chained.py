"""Chained appliances: home module B mines to farm module A's SV2 listener as its pool.

A is built as `blvm stratum` builds it with no pools configured: a failover over solo on its
own node (a real regtest Chainstate) with SOLO_EXTRANONCE_SPACE bytes, behind an `Sv2Server`.
B is built as with a pool configured: DEFAULT_EXTRANONCE_SPACE bytes, A first, solo on its own
node last. A miner on B's extended channel sends shares: B validates and forwards them, A
counts them accepted, and a block found on B's channel is connected by A's chain (so the
coinbase rebuilt through both channel prefixes and B's padding is A's very coinbase). With A
at DEFAULT_EXTRANONCE_SPACE, B is refused and its error says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from appliance.stratum_v2.jobs import (
    CHANNEL_PREFIX_SIZE,
    DEFAULT_EXTRANONCE_SPACE,
    SOLO_EXTRANONCE_SPACE,
)
from appliance.stratum_v2.keys import ServerKeys, load_or_create_keys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import NodeTemplateSource
from appliance.stratum_v2.upstream.failover import FailoverSource, HealthPolicy
from appliance.stratum_v2.upstream.solo import SoloUpstream
from appliance.stratum_v2.upstream.sv2_pool import Sv2PoolConfig, Sv2PoolUpstream
from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from protocols.sv2.messages import SubmitSharesSuccess
from tests.helpers.sri import failover_proxy, until
from tests.integration.stratum_v2.sv2srv_client import MAX, mine

FARM_PAYOUT = bytes.fromhex("0014") + b"\xaa" * 20
HOME_PAYOUT = bytes.fromhex("0014") + b"\x11" * 20
NETWORK = 2**255  # about the regtest target
POLICY = HealthPolicy(connect_timeout=3, no_job_timeout=600, retry_after=30, tick=0.05)


@contextlib.asynccontextmanager
async def farm(chain: Chainstate, space: int, keys: ServerKeys) -> AsyncIterator[Sv2Server]:
    """Appliance A's module: solo on its node, `space` extranonce bytes, SV2 listener."""
    source = NodeTemplateSource(chain, FARM_PAYOUT, extranonce_size=space)
    failover = FailoverSource([SoloUpstream(source, space)], space, POLICY)
    server = Sv2Server(
        failover,
        keys.static_secret,
        keys.certificate,
        Sv2ServerConfig(host="127.0.0.1", port=0, ack_interval=0.05),
        share_sink=failover.share_sink,
    )
    driver = asyncio.create_task(failover.run())
    try:
        await until(lambda: failover.current() is not None, what="the farm's solo work")
        await server.start()
        yield server
    finally:
        await server.close()
        await failover.close()
        driver.cancel()
        await asyncio.gather(driver, return_exceptions=True)
        source.close()


def home_upstreams(farm_port: int, farm_keys: ServerKeys, home_chain: Chainstate):
    """Appliance B's upstreams: A's SV2 listener as its pool, solo on its own node last."""
    pool = Sv2PoolUpstream(
        Sv2PoolConfig(
            "127.0.0.1",
            farm_port,
            farm_keys.authority_public,  # as written in the stratum2+tcp://A:port/<key> entry
            "home.appliance",
            nominal_hash_rate=0.0,  # the farm starts at its easiest target
            connect_timeout=3,
        ),
        DEFAULT_EXTRANONCE_SPACE,
    )
    home_source = NodeTemplateSource(
        home_chain, HOME_PAYOUT, extranonce_size=DEFAULT_EXTRANONCE_SPACE
    )
    return pool, SoloUpstream(home_source, DEFAULT_EXTRANONCE_SPACE), home_source


def test_home_appliance_mines_through_the_farm_appliance(tmp_path: Path) -> None:
    farm_chain = Chainstate.open(tmp_path / "farm", REGTEST, script_threads=1)
    home_chain = Chainstate.open(tmp_path / "home", REGTEST, script_threads=1)
    now = int(time.time())
    farm_keys = load_or_create_keys(tmp_path / "farm-keys", now=now)
    home_keys = load_or_create_keys(tmp_path / "home-keys", now=now)

    async def scenario() -> None:
        async with farm(farm_chain, SOLO_EXTRANONCE_SPACE, farm_keys) as a:
            pool, solo, home_source = home_upstreams(a.port, farm_keys, home_chain)
            try:
                async with failover_proxy(
                    [pool, solo], DEFAULT_EXTRANONCE_SPACE, POLICY, home_keys
                ) as b:
                    await until(lambda: b.failover.current() is not None, what="B's work")
                    assert b.failover.active.upstream is pool, b.failover.status()
                    assert pool.pool_extranonce_size == SOLO_EXTRANONCE_SPACE - CHANNEL_PREFIX_SIZE
                    miner = await b.open_miner("home.miner", min_size=8)
                    assert miner.extranonce_size == DEFAULT_EXTRANONCE_SPACE - CHANNEL_PREFIX_SIZE
                    client = b.client
                    await client.await_work(miner)
                    assert miner.prevhash.prev_hash == farm_chain.tip.hash

                    # Shares (not blocks): B accepts and forwards them, A accepts them.
                    nonce = 0
                    for i in range(3):
                        share, _ = mine(
                            miner, MAX, above=NETWORK, start=nonce, extranonce=bytes([i]) * 16
                        )
                        nonce = share.nonce + 1
                        client.send(share)
                        await client.expect(SubmitSharesSuccess, channel_id=miner.channel_id)
                    await until(lambda: pool.stats.accepted == 3, what="A's acks")
                    assert b.proxy.counters.shares_accepted == 3
                    assert a.counters.shares_accepted == 3 and a.counters.shares_rejected == 0
                    assert pool.stats.rejected == 0

                    # A block found below B lands on A's chain, paying A.
                    share, _ = mine(miner, NETWORK // 2, start=nonce, extranonce=b"\x07" * 16)
                    client.send(share)
                    await until(lambda: farm_chain.tip.height == 1, what="block on A's chain")
                    assert a.counters.blocks_accepted == 1 and home_chain.tip.height == 0
                    block = farm_chain.get_block(farm_chain.tip.hash)
                    assert block.txs[0].outputs[0].script_pubkey == FARM_PAYOUT
                    assert b.failover.active.upstream is pool
                    assert [h[1] for h in b.failover.counters.history] == [pool.name]
            finally:
                home_source.close()

    try:
        asyncio.run(scenario())
    finally:
        farm_chain.close()
        home_chain.close()


def test_farm_with_the_default_space_refuses_the_home_appliance(tmp_path: Path) -> None:
    """What happened before: A offered 16 bytes, B needs 20; B says why and mines solo."""
    farm_chain = Chainstate.open(tmp_path / "farm", REGTEST, script_threads=1)
    home_chain = Chainstate.open(tmp_path / "home", REGTEST, script_threads=1)
    now = int(time.time())
    farm_keys = load_or_create_keys(tmp_path / "farm-keys", now=now)
    home_keys = load_or_create_keys(tmp_path / "home-keys", now=now)

    async def scenario() -> None:
        async with farm(farm_chain, DEFAULT_EXTRANONCE_SPACE, farm_keys) as a:
            pool, solo, home_source = home_upstreams(a.port, farm_keys, home_chain)
            try:
                async with failover_proxy(
                    [pool, solo], DEFAULT_EXTRANONCE_SPACE, POLICY, home_keys
                ) as b:
                    await until(lambda: b.failover.current() is not None, what="B's work")
                    assert b.failover.active.upstream is solo
                    error = pool.stats.last_error or ""
                    assert "pool offers fewer than 20 extranonce bytes per channel" in error
                    assert "this module needs 20" in error
                    assert "offers 28 when it mines solo, with no pools" in error
                    assert error in (b.failover.slots[0].last_reason or "")
                    assert a.counters.connections_total >= 1 and pool.channel_id is None
            finally:
                home_source.close()

    try:
        asyncio.run(scenario())
    finally:
        farm_chain.close()
        home_chain.close()

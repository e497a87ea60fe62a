"""Miner -> our downstream server -> our JD client -> our pool (Sv2Server) + our JDS.

Everything is ours and real: a regtest node (chainstate, mempool with two signed spends, its
template provider over Noise, its JSON-RPC for the JDS), the JDS and the pool sharing one
token registry, and the JD client as the failover's first upstream. The JDS's own view of
the mempool is empty, so it must ask for the template's transactions and the client must
provide them. A block found two hops down reaches the node (SubmitSolution) carrying the
template's transactions and paying the pool. Then the JDS stops: the failover moves to the
next pool, and when that one stops too, to solo.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from appliance.stratum_v2.jd_server import JdServer, JdServerConfig
from appliance.stratum_v2.jd_tokens import JobTokenRegistry
from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import NodeTemplateSource
from appliance.stratum_v2.upstream.failover import HealthPolicy
from appliance.stratum_v2.upstream.jd import JdConfig, JdUpstream
from appliance.stratum_v2.upstream.solo import SoloUpstream
from appliance.stratum_v2.upstream.sv2_pool import Sv2PoolConfig, Sv2PoolUpstream
from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from node.mempool import Mempool
from protocols.bitcoin.tx import Tx
from protocols.sv2.messages import NewExtendedMiningJob, SetNewPrevHash, SubmitSharesSuccess
from tests.helpers.jd_rig import node_rpc
from tests.helpers.sri import REGTEST_TARGET, failover_proxy, node_template_provider, until
from tests.integration.stratum_v2.sv2srv_client import MAX, mine
from tests.unit.mempool.mempool_tools import FakeClock

POOL = bytes.fromhex("0014") + bytes(range(20))
SECOND = bytes.fromhex("0014") + b"\x22" * 20
SOLO = bytes.fromhex("0014") + b"\x11" * 20
SPACE = 8  # the downstream's extranonce space; the pool's channel offers 16


def test_jd_client_declares_mines_a_block_and_falls_back(tmp_path: Path) -> None:
    with node_template_provider(tmp_path, n_blocks=110, n_txs=2) as node:
        chain = node.chain
        jds_mempool = Mempool(chain, clock=FakeClock())  # the JDS knows none of the txs
        pool_source = NodeTemplateSource(chain, POOL)
        second_source = NodeTemplateSource(chain, SECOND)
        solo_source = NodeTemplateSource(chain, SOLO, extranonce_size=SPACE)
        now = int(time.time())
        pool_keys = load_or_create_keys(tmp_path / "pool-keys", now=now)
        second_keys = load_or_create_keys(tmp_path / "second-keys", now=now)
        proxy_keys = load_or_create_keys(tmp_path / "proxy-keys", now=now)
        start_height = chain.height

        async def scenario() -> None:
            with node_rpc(chain, jds_mempool, tmp_path / "cookie") as rpc:
                tokens = JobTokenRegistry()
                jds = JdServer(
                    tokens, pool_keys.static_secret, pool_keys.certificate, rpc, POOL,
                    JdServerConfig(host="127.0.0.1", port=0),
                )  # fmt: skip
                pool = Sv2Server(
                    pool_source, pool_keys.static_secret, pool_keys.certificate,
                    Sv2ServerConfig(host="127.0.0.1", port=0, ack_interval=0.05),
                    job_tokens=tokens,
                )  # fmt: skip
                second_pool = Sv2Server(
                    second_source, second_keys.static_secret, second_keys.certificate,
                    Sv2ServerConfig(host="127.0.0.1", port=0, ack_interval=0.05),
                )  # fmt: skip
                for server in (jds, pool, second_pool):
                    await server.start()
                jd = JdUpstream(
                    JdConfig(
                        "127.0.0.1", pool.port, "127.0.0.1", jds.port,
                        pool_keys.authority_public, "127.0.0.1", node.tp.port,
                        node.tp.keys.authority_public, user_identity="jd.worker",
                        nominal_hash_rate=0.0, connect_timeout=5, timeout=5,
                    ),
                    SPACE,
                )  # fmt: skip
                second = Sv2PoolUpstream(
                    Sv2PoolConfig(
                        "127.0.0.1", second_pool.port, second_keys.authority_public, "second",
                        nominal_hash_rate=0.0, connect_timeout=3,
                    ),
                    SPACE,
                )  # fmt: skip
                solo = SoloUpstream(solo_source, SPACE)
                policy = HealthPolicy(
                    connect_timeout=8, no_job_timeout=600, retry_after=60, tick=0.05
                )
                try:
                    async with failover_proxy([jd, second, solo], SPACE, policy, proxy_keys) as rig:
                        await _declared_mining_and_fallback(
                            rig, jd, second, solo, jds, pool, second_pool, node, start_height
                        )
                finally:
                    for server in (jds, pool, second_pool):
                        await server.close()

        try:
            asyncio.run(scenario())
        finally:
            for source in (pool_source, second_source, solo_source):
                source.close()
            jds_mempool.close()


async def _declared_mining_and_fallback(
    rig, jd, second, solo, jds, pool, second_pool, node, start_height
) -> None:
    failover, chain = rig.failover, node.chain
    await until(lambda: failover.current() is not None, timeout=20, what="declared work")
    assert failover.active.upstream is jd

    # Token, missing transactions provided, job declared, custom job accepted by the pool.
    c = jds.counters
    assert c.tokens_allocated >= 1 and c.jobs_declared == 1
    assert c.missing_tx_requests == 1 and c.txs_provided == 2
    assert pool.counters.connections >= 1 and jd.stats.works == 1
    ext = await rig.open_miner("miner.ext")
    client = rig.client
    await client.await_work(ext)
    assert ext.prevhash.prev_hash == chain.tip.hash
    job = ext.job
    assert len(job.merkle_path) == 2  # coinbase + the node's two spends
    coinbase = Tx.from_bytes(
        job.coinbase_tx_prefix + ext.extranonce_prefix + bytes(4) + job.coinbase_tx_suffix
    )
    # The JDS's payout output carries the whole template value: subsidy plus the spends' fees.
    assert coinbase.outputs[0].script_pubkey == POOL
    assert coinbase.outputs[0].value == sum(o.value for o in coinbase.outputs) > 50 * 10**8

    # Shares: accepted downstream, forwarded on the custom job, acked by the pool.
    nonce = 0
    for _ in range(3):
        share, _ = mine(ext, MAX, above=REGTEST_TARGET, start=nonce, extranonce=b"\1\2\3\4")
        nonce = share.nonce + 1
        client.send(share)
        await client.expect(SubmitSharesSuccess, channel_id=ext.channel_id)
    await until(lambda: jd.stats.accepted == 3, what="pool acks on the custom job")
    assert jd.stats.rejected == 0

    # A block: SubmitSolution to our node, PushSolution to the JDS, the share to the pool.
    share, _ = mine(ext, REGTEST_TARGET, start=nonce, extranonce=b"\5\6\7\x08")
    client.send(share)
    await until(lambda: chain.height == start_height + 1, what="block on our node")
    block = chain.get_block(chain.tip.hash)
    assert block is not None and block.txs[0].outputs[0].script_pubkey == POOL
    assert {t.txid for t in block.txs[1:]} == {t.txid for t in node.txs}
    # Our SubmitSolution, the pool's own submission and the JDS's race to connect it: the
    # TP got ours either way (accepted, or a duplicate of the block another path connected).
    tp = node.tp.stats
    await until(lambda: tp.solutions_accepted + tp.solutions_rejected == 1, what="SubmitSolution")
    await until(lambda: c.solutions_pushed == 1, what="PushSolution at the JDS")
    # The JDS rebuilt exactly the connected block from our PushSolution's fields.
    assert c.pushed_blocks == [block.hash_hex]
    await until(lambda: jd.stats.accepted == 4, what="the block's share acked by the pool")
    assert jd.session.blocks == 1
    # The next template (on the new tip) is declared too and reaches the miner.
    await client.await_work(ext)
    assert ext.prevhash.prev_hash == chain.tip.hash
    assert failover.active.upstream is jd

    # The JDS stops: the JD client fails, the next pool takes over (same tip: a plain job).
    await jds.close()
    await until(lambda: _active(failover) is second, what="the next pool")
    assert "the jds closed the connection" in (failover.slots[0].last_reason or "")
    await _next_job(client, ext)
    coinbase = Tx.from_bytes(
        ext.job.coinbase_tx_prefix + ext.extranonce_prefix + bytes(4) + ext.job.coinbase_tx_suffix
    )
    assert coinbase.outputs[0].script_pubkey == SECOND
    # That pool stops too: solo on our own node.
    await second_pool.close()
    await until(lambda: _active(failover) is solo, what="solo")
    await _next_job(client, ext)
    share, _ = mine(ext, REGTEST_TARGET, extranonce=b"\x09\x09\x09\x09")
    client.send(share)
    await until(lambda: chain.height == start_height + 2, what="solo block")
    block = chain.get_block(chain.tip.hash)
    assert block is not None and block.txs[0].outputs[0].script_pubkey == SOLO
    history = [h[1] for h in failover.counters.history if h[2] == "active"]
    assert history == [jd.name, second.name, solo.name]


def _active(failover):
    return failover.active.upstream if failover.active is not None else None


async def _next_job(client, ext) -> None:
    """The next job on `ext`, with its SetNewPrevHash when the tip changed."""
    ext.job = await client.expect(NewExtendedMiningJob, channel_id=ext.channel_id)
    if ext.job.min_ntime is None:
        ext.prevhash = await client.expect(SetNewPrevHash, channel_id=ext.channel_id)


def test_a_refused_declaration_moves_to_the_next_pool(tmp_path: Path) -> None:
    """The JDS's node is on another chain (height 0): it refuses our job for height 111
    (DeclareMiningJob.Error), and the failover mines on the next pool instead."""
    with node_template_provider(tmp_path, n_blocks=110, n_txs=0) as node:
        other = Chainstate.open(tmp_path / "other", REGTEST, script_threads=1)
        other_mempool = Mempool(other, clock=FakeClock())
        pool_source = NodeTemplateSource(node.chain, POOL)
        second_source = NodeTemplateSource(node.chain, SECOND)
        now = int(time.time())
        pool_keys = load_or_create_keys(tmp_path / "pool-keys", now=now)
        second_keys = load_or_create_keys(tmp_path / "second-keys", now=now)
        proxy_keys = load_or_create_keys(tmp_path / "proxy-keys", now=now)

        async def scenario() -> None:
            with node_rpc(other, other_mempool, tmp_path / "cookie") as rpc:
                tokens = JobTokenRegistry()
                jds = JdServer(
                    tokens, pool_keys.static_secret, pool_keys.certificate, rpc, POOL,
                    JdServerConfig(host="127.0.0.1", port=0),
                )  # fmt: skip
                pool = Sv2Server(
                    pool_source, pool_keys.static_secret, pool_keys.certificate,
                    Sv2ServerConfig(host="127.0.0.1", port=0), job_tokens=tokens,
                )  # fmt: skip
                second_pool = Sv2Server(
                    second_source, second_keys.static_secret, second_keys.certificate,
                    Sv2ServerConfig(host="127.0.0.1", port=0),
                )  # fmt: skip
                for server in (jds, pool, second_pool):
                    await server.start()
                jd = JdUpstream(
                    JdConfig(
                        "127.0.0.1", pool.port, "127.0.0.1", jds.port,
                        pool_keys.authority_public, "127.0.0.1", node.tp.port,
                        node.tp.keys.authority_public, connect_timeout=5, timeout=5,
                    ),
                    SPACE,
                )  # fmt: skip
                second = Sv2PoolUpstream(
                    Sv2PoolConfig(
                        "127.0.0.1", second_pool.port, second_keys.authority_public, "second"
                    ),
                    SPACE,
                )
                policy = HealthPolicy(connect_timeout=8, retry_after=60, tick=0.05)
                try:
                    async with failover_proxy([jd, second], SPACE, policy, proxy_keys) as rig:
                        failover = rig.failover
                        await until(lambda: _active(failover) is second, what="the next pool")
                        reason = failover.slots[0].last_reason or ""
                        assert "JDS rejected our job: stale-chain-tip" in reason
                        assert jd.stats.works == 0 and jds.counters.jobs_declared == 0
                        assert jd.session.channel is not None  # the pool itself was fine
                finally:
                    for server in (jds, pool, second_pool):
                        await server.close()

        try:
            asyncio.run(scenario())
        finally:
            pool_source.close()
            second_source.close()
            other_mempool.close()
            other.close()

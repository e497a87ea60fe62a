"""Our upstream client and our Template Provider against SRI's `pool_sv2` (real peers).

a. miner -> our downstream server -> our SV2 upstream client -> pool_sv2 -> our node's TP:
   the client checks pool_sv2's certificate with its base58 authority key, opens an extended
   channel, forwards shares (acked by the pool), and a block found two hops down goes back
   through SubmitSolution and is connected by our node.
b. SRI `mining_device` -> pool_sv2 -> our node's TP: the node's height rises by the blocks
   the CPU miner finds at regtest difficulty.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.upstream.failover import HealthPolicy
from appliance.stratum_v2.upstream.sv2_pool import Sv2PoolConfig, Sv2PoolUpstream
from protocols.sv2.messages import SubmitSharesSuccess
from tests.helpers.sri import (
    BIN,
    REGTEST_TARGET,
    SRI_PUBLIC,
    failover_proxy,
    free_port,
    need_role,
    node_template_provider,
    payout,
    pool_config,
    sri_role,
    translator_config,
    until,
    wait_until,
)
from tests.integration.stratum_v2.sv2srv_client import mine

pytestmark = pytest.mark.interop

SPACE = 8
NETWORK = REGTEST_TARGET


def test_sv2_our_upstream_client_mines_through_sri_pool(tmp_path: Path) -> None:
    need_role("pool_sv2")
    proxy_keys = load_or_create_keys(tmp_path / "proxy-keys", now=int(time.time()))

    async def scenario(node, pool_port: int) -> None:
        height = node.chain.height
        upstream = Sv2PoolUpstream(
            Sv2PoolConfig(
                "127.0.0.1",
                pool_port,
                SRI_PUBLIC,
                "blvm-proxy",
                nominal_hash_rate=1e3,
                connect_timeout=10,
            ),
            SPACE,
        )
        # pool_sv2 needs a moment to reach the TP: refused connects are retried quickly
        policy = HealthPolicy(connect_timeout=15, retry_after=0.5, tick=0.1)
        async with failover_proxy([upstream], SPACE, policy, proxy_keys) as rig:
            failover = rig.failover
            await until(lambda: failover.current() is not None, 60, "work from pool_sv2")
            assert upstream.pool_extranonce_size >= SPACE
            work = failover.current()
            assert work.prev_hash == node.chain.tip.hash
            ext = await rig.open_miner("miner")
            client = rig.client
            await client.await_work(ext)
            # a share at the pool's target: forwarded as SubmitSharesExtended and acked
            target = upstream.target
            share, value = mine(ext, target, extranonce=b"\1\2\3\4")
            client.send(share)
            await client.expect(SubmitSharesSuccess, channel_id=ext.channel_id)
            await until(lambda: upstream.stats.accepted >= 1, 30, "pool_sv2 share ack")
            assert upstream.stats.rejected == 0, upstream.stats.rejects
            if value <= NETWORK:  # at regtest the pool's target may make it a block already
                blocks = 1
            else:
                share, _ = mine(ext, NETWORK, start=share.nonce + 1, extranonce=b"\5\6\7\x08")
                client.send(share)
                blocks = 1
            await until(lambda: node.chain.height >= height + blocks, 30, "block on our node")
            block = node.chain.get_block(node.chain.block_hash_at(height + 1))
            assert block.header.prev_hash == work.prev_hash
            # the coinbase carries the pool's prefix, then our channel prefix and extranonce
            assert ext.extranonce_prefix in block.txs[0].serialize_without_witness()

    with node_template_provider(tmp_path) as node:
        tp = node.tp
        pool_port = free_port()
        config = pool_config(pool_port, tp.port, payout(), tp.keys.authority_public_text)
        with sri_role(tmp_path, "pool_sv2", config):
            asyncio.run(scenario(node, pool_port))


def test_sv2_sri_mining_device_mines_blocks_via_pool_on_our_tp(tmp_path: Path) -> None:
    need_role("pool_sv2")
    need_role("mining_device")
    with node_template_provider(tmp_path, n_txs=0) as node:
        tp = node.tp
        height = node.chain.height
        pool_port = free_port()
        config = pool_config(pool_port, tp.port, payout(), tp.keys.authority_public_text)
        miner_log_path = tmp_path / "mining_device.log"
        with sri_role(tmp_path, "pool_sv2", config), miner_log_path.open("w") as miner_log:
            miner = None
            try:
                wait_until(lambda: tp.stats.prev_hashes_sent >= 1, 60, "template sent to pool_sv2")
                miner = subprocess.Popen(
                    [
                        "nice",
                        "-n",
                        "19",
                        str(BIN / "mining_device"),
                        "-a",
                        f"127.0.0.1:{pool_port}",
                        "-p",
                        SRI_PUBLIC,
                        "--cores",
                        "1",
                        "--id-user",
                        "blvm-interop",
                    ],
                    stdout=miner_log,
                    stderr=subprocess.STDOUT,
                )
                wait_until(lambda: node.chain.height >= height + 2, 120, "two blocks on our node")
                # The counter moves once process_block has returned, just after the tip did.
                wait_until(lambda: tp.stats.solutions_accepted >= 2, 10, "solutions counted")
                assert tp.stats.solutions_accepted >= 2 and tp.stats.solutions_rejected == 0
                for h in (height + 1, height + 2):
                    block = node.chain.get_block(node.chain.block_hash_at(h))
                    assert b"blvm interop" in block.txs[0].inputs[0].script_sig  # pool_signature
                assert node.error is None, node.error
            except BaseException:
                miner_log.flush()
                print(miner_log_path.read_text()[-2000:])
                raise
            finally:
                if miner is not None:
                    miner.kill()
                    miner.wait(timeout=10)


def test_sv2_our_sv1_upstream_client_through_sri_translator(tmp_path: Path) -> None:
    """miner -> our proxy -> our SV1 upstream client -> translator_sv2 (a real SV1 server)
    -> our SV2 server over a regtest chain: version bits and difficulty as the translator
    expects them; a block with a rolled version connects on the chain."""
    need_role("translator_sv2")
    import dataclasses

    from appliance.stratum_v2.source import NodeTemplateSource
    from appliance.stratum_v2.upstream.sv1_pool import BIP320_MASK, Sv1PoolConfig, Sv1PoolUpstream
    from node.chain.chainstate import Chainstate
    from node.chain.params import REGTEST

    chain = Chainstate.open(tmp_path / "chain", REGTEST, script_threads=1)
    source = NodeTemplateSource(chain, bytes.fromhex("51"))
    pool_keys = load_or_create_keys(tmp_path / "pool-keys", now=int(time.time()))
    proxy_keys = load_or_create_keys(tmp_path / "proxy-keys", now=int(time.time()))
    sv1_port = free_port()

    async def scenario() -> None:
        pool = Sv2Server(
            source,
            pool_keys.static_secret,
            pool_keys.certificate,
            Sv2ServerConfig(host="127.0.0.1", port=0, ack_batch=1),
        )
        await pool.start()
        config = translator_config(
            sv1_port, pool.port, pool_keys.authority_public, extranonce2_size=8
        )
        upstream = Sv1PoolUpstream(Sv1PoolConfig("127.0.0.1", sv1_port, "blvm.w1"), SPACE)
        policy = HealthPolicy(connect_timeout=15, retry_after=0.5, tick=0.1)
        try:
            with sri_role(tmp_path, "translator_sv2", config):
                async with failover_proxy([upstream], SPACE, policy, proxy_keys) as rig:
                    failover = rig.failover
                    await until(
                        lambda: failover.current() is not None, 60, "work from the translator"
                    )
                    assert upstream.conn.extranonce2_size == SPACE
                    assert upstream.version_mask and upstream.version_mask & ~BIP320_MASK == 0
                    assert upstream.target is not None
                    ext = await rig.open_miner("miner")
                    client = rig.client
                    await client.await_work(ext)
                    assert ext.prevhash.prev_hash == chain.tip.hash
                    rolled_version = ext.job.version | (0x00004000 & upstream.version_mask)
                    rolled = dataclasses.replace(
                        ext, job=dataclasses.replace(ext.job, version=rolled_version)
                    )
                    share, _ = mine(rolled, min(upstream.target, NETWORK), extranonce=b"\1\2\3\4")
                    client.send(share)
                    await client.expect(SubmitSharesSuccess, channel_id=ext.channel_id)
                    await until(lambda: upstream.stats.accepted >= 1, 30, "translator accepts")
                    assert upstream.stats.rejected == 0, upstream.stats.rejects
                    await until(lambda: chain.tip.height == 1, 30, "block on our chain")
                    assert chain.get_block(chain.tip.hash).header.version == rolled_version
        finally:
            await pool.close()

    try:
        asyncio.run(scenario())
    finally:
        source.close()
        chain.close()

"""SRI's `jd_client_sv2` (FULLTEMPLATE) declaring jobs to our JDS and mining them on our pool.

Topology, everything ours except the JD client:

    our node (chain + mempool): SV2 Template Provider, JSON-RPC (cookie)
      ^ templates + transaction data           ^ mempool lookups, submitblock
    jd_client_sv2 --JDP--> our JdServer --shared tokens--> our Sv2Server (mining, work selection)
      ^ SV2 mining (standard channel)
    our SV2 miner

The JDC takes templates (with mempool transactions) from our node's TP, allocates a token at
our JDS (whose coinbase output is the pool's script), declares each job (coinbase + wtxids,
checked against our node's mempool over RPC), then sets it on its extended channel with our
pool (SetCustomMiningJob). Our miner's share behind the JDC is, on regtest, a block: the JDC
forwards it to our pool on the custom job (validated there, then submitted via the JDS) and
pushes the solution to our JDS, which rebuilds the block from the declared job.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.stratum_v2.jd_server import JdServer, JdServerConfig
from appliance.stratum_v2.jd_tokens import JobTokenRegistry
from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.node_link import NodeLink
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST, block_subsidy
from node.mempool import Mempool
from tests.helpers.jd_rig import node_rpc
from tests.helpers.sri import (
    SRI_PUBLIC,
    SRI_SECRET,
    free_port,
    need_role,
    node_template_provider,
    sri_role,
    until,
)
from tests.helpers.stratum_miners import Sv2StandardMiner
from tests.unit.mempool.mempool_tools import FakeClock, regtest_chain

pytestmark = pytest.mark.interop

POOL = bytes.fromhex("0014") + bytes(range(20))  # the pool's P2WPKH
SOLO = "raw(51)"  # the JDC's own fallback payout (unused while our pool accepts its jobs)


def jdc_fulltemplate_config(
    port: int, tp_port: int, tp_key: str, pool_port: int, jds_port: int, pool_key: str
) -> str:
    return (
        'mode = "FULLTEMPLATE"\n'
        f'listening_address = "127.0.0.1:{port}"\n'
        "max_supported_version = 2\n"
        "min_supported_version = 2\n"
        f'authority_public_key = "{SRI_PUBLIC}"\n'
        f'authority_secret_key = "{SRI_SECRET}"\n'
        "cert_validity_sec = 3600\n"
        f'coinbase_reward_script = "{SOLO}"\n'
        'jdc_signature = "blvm jd interop"\n'
        "shares_per_minute = 6.0\n"
        "share_batch_size = 1\n"
        "[template_provider_type.Sv2Tp]\n"
        f'address = "127.0.0.1:{tp_port}"\n'
        f'public_key = "{tp_key}"\n'
        "[[upstreams]]\n"
        f'authority_pubkey = "{pool_key}"\n'
        'pool_address = "127.0.0.1"\n'
        f"pool_port = {pool_port}\n"
        'jds_address = "127.0.0.1"\n'
        f"jds_port = {jds_port}\n"
        'user_identity = "blvm-jdc"\n'
    )


def wait_for_tip(miner: Sv2StandardMiner, prev_hash: bytes, timeout: float = 30) -> None:
    """Until the miner holds an active job on `prev_hash` (the JDC's work for the new tip)."""
    deadline = time.monotonic() + timeout
    for event in miner.events:
        miner._track(event)
        job, prev = miner.job, miner.prev_hash
        if prev.prev_hash == prev_hash and (job.min_ntime is not None or job.job_id == prev.job_id):
            return
        assert time.monotonic() < deadline, "no job on the new tip from the JDC"
    raise AssertionError("the JDC closed the connection")


def test_sri_jd_client_declares_and_mines_on_our_pool(tmp_path: Path) -> None:
    need_role("jd_client_sv2")
    keys = load_or_create_keys(tmp_path / "pool-keys", now=int(time.time()))

    async def scenario(node) -> None:
        tp = node.tp
        height = node.chain.height
        with node_rpc(node.chain, node.mempool, tmp_path / "cookie") as rpc:
            tokens = JobTokenRegistry()
            link = NodeLink("127.0.0.1", tp.port, POOL)
            link_task = asyncio.create_task(link.run())
            jds = JdServer(
                tokens, keys.static_secret, keys.certificate, rpc, POOL,
                JdServerConfig(host="127.0.0.1", port=0),
            )  # fmt: skip
            # Shares of the JD client's miner must meet our channel target: many a minute.
            pool = Sv2Server(
                link, keys.static_secret, keys.certificate,
                Sv2ServerConfig(host="127.0.0.1", port=0, shares_per_minute=600.0, ack_batch=1),
                job_tokens=tokens,
            )  # fmt: skip
            await jds.start()
            await pool.start()
            jdc_port = free_port()
            config = jdc_fulltemplate_config(
                jdc_port, tp.port, tp.keys.authority_public_text, pool.port, jds.port,
                keys.authority_public,
            )  # fmt: skip
            try:
                with sri_role(tmp_path, "jd_client_sv2", config):
                    await until(lambda: jds.counters.tokens_allocated >= 1, 60, "token")
                    miner = await asyncio.to_thread(Sv2StandardMiner, jdc_port)
                    await until(lambda: jds.counters.jobs_declared >= 1, 60, "declared job")
                    await until(lambda: pool.counters.custom_jobs >= 1, 30, "custom job")
                    assert not jds.counters.jobs_rejected, jds.status()
                    assert pool.counters.custom_jobs_refused == 0, pool.status()
                    # The declared job carries the node's mempool transactions.
                    job = tokens.declared_jobs()[0]
                    assert {t.txid for t in job.txs} == {t.txid for t in node.txs}
                    paid = job.coinbase.tx.outputs[0]
                    assert paid.script_pubkey == POOL
                    fees = 2_000 + 3_000
                    assert paid.value == block_subsidy(height + 1, REGTEST) + fees

                    await asyncio.to_thread(miner.mine_and_submit)
                    await until(lambda: node.chain.height == height + 1, 30, "block connected")
                    await until(lambda: pool.counters.shares_accepted >= 1, 30, "pool share")
                    await until(lambda: jds.counters.solutions_pushed >= 1, 30, "PushSolution")
                    await until(lambda: jds.counters.blocks_submitted >= 1, 30, "JDS submit")
                    tip = node.chain.tip.hash_hex
                    # Both our paths rebuilt exactly the connected block: the pool from the
                    # share on the custom job, the JDS from PushSolution.
                    await until(lambda: len(jds.counters.block_results) >= 2, 30, "both blocks")
                    assert jds.counters.pushed_blocks == [tip], jds.counters
                    assert jds.counters.block_results == [(tip, None), (tip, None)], jds.counters
                    assert pool.counters.blocks_found >= 1, pool.status()
                    block = node.chain.get_block(node.chain.tip.hash)
                    assert block.txs[0].outputs[0].script_pubkey == POOL
                    assert {tx.txid for tx in block.txs[1:]} == {t.txid for t in node.txs}
                    worker = pool.status()["workers"]
                    assert sum(w["accepted"] for w in worker.values()) >= 1, worker

                    # The next tip: the JDC declares again and mines on.
                    before = pool.counters.custom_jobs
                    await until(lambda: pool.counters.custom_jobs > before, 60, "next job")
                    await asyncio.to_thread(wait_for_tip, miner, node.chain.tip.hash)
                    await asyncio.to_thread(miner.mine_and_submit)
                    await until(lambda: node.chain.height == height + 2, 30, "second block")
                    await until(lambda: pool.counters.shares_accepted >= 2, 30, "second share")
                    await until(lambda: len(jds.counters.pushed_blocks) >= 2, 30, "second push")
                    assert jds.counters.pushed_blocks[1] == node.chain.tip.hash_hex, jds.counters
                    assert all(r is None for _, r in jds.counters.block_results), jds.counters
                    miner.close()
                    assert pool.counters.shares_rejected == 0, pool.status()
            finally:
                await pool.close()
                await jds.close()
                await link.close()
                link_task.cancel()
                await asyncio.gather(link_task, return_exceptions=True)

    with node_template_provider(tmp_path) as node:
        asyncio.run(scenario(node))
        assert node.error is None, node.error


def test_sri_jd_client_provides_transactions_our_node_lacks(tmp_path: Path) -> None:
    """The JDS's node (B) has the chain but an empty mempool: it asks the JDC for the
    transactions (ProvideMissingTransactions), checks their wtxids, accepts the job, and the
    block found on it reaches B only through our pool and JDS."""
    need_role("jd_client_sv2")
    keys = load_or_create_keys(tmp_path / "pool-keys", now=int(time.time()))
    blocks, _ = regtest_chain(110, seed=b"sv2-interop-tp")  # node A's chain (the helper's seed)
    chain_b = Chainstate.open(tmp_path / "node-b", REGTEST, script_threads=1)
    for raw in blocks:
        assert chain_b.process_block(raw).status is BlockStatus.ACCEPTED
    mempool_b = Mempool(chain_b, clock=FakeClock())

    async def scenario(node) -> None:
        tp = node.tp
        height = node.chain.height
        assert chain_b.tip.hash == node.chain.tip.hash
        with node_rpc(chain_b, mempool_b, tmp_path / "cookie-b") as rpc:
            tokens = JobTokenRegistry()
            link = NodeLink("127.0.0.1", tp.port, POOL)
            link_task = asyncio.create_task(link.run())
            jds = JdServer(
                tokens, keys.static_secret, keys.certificate, rpc, POOL,
                JdServerConfig(host="127.0.0.1", port=0),
            )  # fmt: skip
            pool = Sv2Server(
                link, keys.static_secret, keys.certificate,
                Sv2ServerConfig(host="127.0.0.1", port=0, shares_per_minute=600.0, ack_batch=1),
                job_tokens=tokens,
            )  # fmt: skip
            await jds.start()
            await pool.start()
            jdc_port = free_port()
            config = jdc_fulltemplate_config(
                jdc_port, tp.port, tp.keys.authority_public_text, pool.port, jds.port,
                keys.authority_public,
            )  # fmt: skip
            try:
                with sri_role(tmp_path, "jd_client_sv2", config):
                    miner = await asyncio.to_thread(Sv2StandardMiner, jdc_port)
                    await until(lambda: pool.counters.custom_jobs >= 1, 60, "custom job")
                    assert jds.counters.missing_tx_requests >= 1, jds.status()
                    assert jds.counters.txs_provided >= len(node.txs), jds.status()
                    assert not jds.counters.jobs_rejected, jds.status()
                    job = tokens.declared_jobs()[0]
                    assert {t.txid for t in job.txs} == {t.txid for t in node.txs}
                    await asyncio.to_thread(miner.mine_and_submit)
                    await until(lambda: chain_b.height == height + 1, 30, "block on node B")
                    await until(lambda: node.chain.height == height + 1, 30, "block on node A")
                    assert chain_b.tip.hash == node.chain.tip.hash
                    block = chain_b.get_block(chain_b.tip.hash)
                    assert {tx.txid for tx in block.txs[1:]} == {t.txid for t in node.txs}
                    miner.close()
            finally:
                await pool.close()
                await jds.close()
                await link.close()
                link_task.cancel()
                await asyncio.gather(link_task, return_exceptions=True)

    try:
        with node_template_provider(tmp_path) as node:
            asyncio.run(scenario(node))
            assert node.error is None, node.error
    finally:
        mempool_b.close()
        chain_b.close()


def test_sri_mining_device_behind_jd_client_mines_on_our_pool(tmp_path: Path) -> None:
    """SRI's CPU miner behind SRI's JDC: every regtest share is a block, so each block is
    followed at once by a new template, a new declaration and a new custom job — the JDS
    and our pool must keep up without refusing anything."""
    need_role("jd_client_sv2")
    mining_device = need_role("mining_device")
    keys = load_or_create_keys(tmp_path / "pool-keys", now=int(time.time()))

    async def scenario(node) -> None:
        tp = node.tp
        height = node.chain.height
        with node_rpc(node.chain, node.mempool, tmp_path / "cookie") as rpc:
            tokens = JobTokenRegistry()
            link = NodeLink("127.0.0.1", tp.port, POOL)
            link_task = asyncio.create_task(link.run())
            jds = JdServer(
                tokens, keys.static_secret, keys.certificate, rpc, POOL,
                JdServerConfig(host="127.0.0.1", port=0),
            )  # fmt: skip
            pool = Sv2Server(
                link, keys.static_secret, keys.certificate,
                Sv2ServerConfig(host="127.0.0.1", port=0, shares_per_minute=600.0, ack_batch=1),
                job_tokens=tokens,
            )  # fmt: skip
            await jds.start()
            await pool.start()
            jdc_port = free_port()
            config = jdc_fulltemplate_config(
                jdc_port, tp.port, tp.keys.authority_public_text, pool.port, jds.port,
                keys.authority_public,
            )  # fmt: skip
            log_path = tmp_path / "mining_device.log"
            try:
                with sri_role(tmp_path, "jd_client_sv2", config), log_path.open("w") as log:
                    await until(lambda: jds.counters.tokens_allocated >= 1, 60, "token")
                    proc = await asyncio.create_subprocess_exec(
                        str(mining_device), "-a", f"127.0.0.1:{jdc_port}", "-p", SRI_PUBLIC,
                        "--id-user", "blvm-jd-interop", "--cores", "1",
                        stdout=log, stderr=log,
                    )  # fmt: skip
                    try:
                        await until(lambda: node.chain.height >= height + 3, 90, "three blocks")
                        await until(lambda: pool.counters.blocks_found >= 3, 30, "pool blocks")
                    finally:
                        proc.kill()
                        await proc.wait()
                    status = (pool.status(), jds.status())
                    assert pool.counters.custom_jobs >= 3, status
                    assert pool.counters.shares_accepted >= 3, status
                    # Declarations racing a new tip may be stale (non-fatal for the JDC);
                    # nothing else may be refused.
                    assert set(jds.counters.jobs_rejected) <= {"stale-chain-tip"}, status
                    assert None not in jds.counters.pushed_blocks, status
                    # Shares in flight when a block lands are stale; no other refusal.
                    rejected = {code for w in pool.workers.values() for code in w.rejected}
                    assert rejected <= {"stale-share"}, status
            finally:
                await pool.close()
                await jds.close()
                await link.close()
                link_task.cancel()
                await asyncio.gather(link_task, return_exceptions=True)

    with node_template_provider(tmp_path) as node:
        asyncio.run(scenario(node))
        assert node.error is None, node.error

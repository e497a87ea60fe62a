"""SRI's `pool_sv2` on our node through Bitcoin Core's IPC Mining interface (`node.ipc`).

1. pool_sv2 takes its templates over IPC (template_provider_type BitcoinCoreIpc, schema 30);
   SRI's mining_device mines on it; the solutions come back through submitSolution and our
   node connects the blocks.
2. Our JD client against SRI's Job Declaration Server. SRI publishes its JDS only inside
   `pool_sv2`, which runs it only on Core's IPC interface; on our node it runs for real:

    our node: chain + mempool, SV2 Template Provider (Noise), IPC node.sock (Cap'n Proto)
      ^ templates (TDP)                      ^ templates, checkBlock, submitSolution (IPC)
    our JD client (JdUpstream) --JDP------> pool_sv2's JDS
                               --mining---> pool_sv2
      ^ SV2 (our downstream server)
    our SV2 miner

Shown: a token from SRI's JDS, DeclareMiningJob accepted (the JDS checks the block on our
node over IPC), SetCustomMiningJob accepted by pool_sv2, shares acknowledged on the custom
job, a block found two hops down connected by our node; then pool_sv2 stops and the
failover falls back to solo on our node, which mines the next block.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.source import NodeTemplateSource
from appliance.stratum_v2.upstream.failover import HealthPolicy
from appliance.stratum_v2.upstream.jd import JdConfig, JdUpstream
from appliance.stratum_v2.upstream.solo import SoloUpstream
from node.ipc.mining_ipc import IpcMiningServer, socket_path
from protocols.bitcoin.address import address_to_script
from protocols.sv2.messages import NewExtendedMiningJob, SetNewPrevHash, SubmitSharesSuccess
from tests.helpers.sri import (
    REGTEST_TARGET,
    SRI_PUBLIC,
    SRI_SECRET,
    connect_retrying,
    failover_proxy,
    free_port,
    need_role,
    node_template_provider,
    until,
)
from tests.integration.stratum_v2.sv2srv_client import MAX, mine

pytestmark = pytest.mark.interop

POOL_ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
SOLO = bytes.fromhex("0014") + b"\x11" * 20
SPACE = 8  # our downstream's extranonce space


def pool_with_jds_config(port: int, jds_port: int, datadir: Path) -> str:
    """pool_sv2 with its built-in JDS, on Bitcoin Core's IPC (schema 30) at `datadir`."""
    return (
        f'authority_public_key = "{SRI_PUBLIC}"\n'
        f'authority_secret_key = "{SRI_SECRET}"\n'
        "cert_validity_sec = 3600\n"
        f'listen_address = "127.0.0.1:{port}"\n'
        f'coinbase_reward_script = "addr({POOL_ADDRESS})"\n'
        "server_id = 1\n"
        'pool_signature = "blvm interop"\n'
        "shares_per_minute = 6.0\n"
        "share_batch_size = 1\n"
        "[template_provider_type.BitcoinCoreIpc]\n"
        "version = 30\n"
        'network = "regtest"\n'
        f'data_dir = "{datadir}"\n'
        "fee_threshold = 100\n"
        "min_interval = 1\n"
        "[jds]\n"
        f'listen_address = "127.0.0.1:{jds_port}"\n'
    )


def test_pool_sv2_mines_on_our_node_over_ipc(tmp_path: Path) -> None:
    binary = need_role("pool_sv2")
    miner_binary = need_role("mining_device")
    with node_template_provider(tmp_path, n_blocks=110, n_txs=2) as node:
        chain = node.chain
        core_dir = tmp_path / "core"
        ipc = IpcMiningServer(chain, node.mempool, socket_path(core_dir, "regtest"))
        ipc.start()
        pool_port, jds_port = free_port(), free_port()
        config = tmp_path / "pool_sv2.toml"
        config.write_text(pool_with_jds_config(pool_port, jds_port, core_dir))
        log_path, miner_log_path = tmp_path / "pool_sv2.log", tmp_path / "mining_device.log"
        height = chain.height
        with log_path.open("w") as log, miner_log_path.open("w") as miner_log:
            pool = subprocess.Popen(
                [str(binary), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
            miner = None
            try:
                connect_retrying(pool_port, timeout=30).close()
                miner = subprocess.Popen(
                    [
                        "nice", "-n", "19", str(miner_binary), "-a", f"127.0.0.1:{pool_port}",
                        "-p", SRI_PUBLIC, "--cores", "1", "--id-user", "blvm-ipc",
                    ],
                    stdout=miner_log,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
                deadline = time.monotonic() + 120
                while chain.height < height + 2:
                    assert time.monotonic() < deadline, "no two blocks through IPC"
                    time.sleep(0.2)
                first = chain.get_block(chain.block_hash_at(height + 1))
                assert first is not None
                # The template's transactions, the pool's signature in the coinbase.
                assert {t.txid for t in first.txs[1:]} == {t.txid for t in node.txs}
                assert b"blvm interop" in first.txs[0].inputs[0].script_sig
                assert ipc.connections >= 1
            except BaseException:
                log.flush()
                print(log_path.read_text()[-6000:])
                raise
            finally:
                if miner is not None:
                    miner.kill()
                    miner.wait(timeout=10)
                pool.kill()
                pool.wait(timeout=10)
                ipc.close()


def test_our_jd_client_with_sri_jds_and_fallback_to_solo(tmp_path: Path) -> None:
    binary = need_role("pool_sv2")
    pool_script = address_to_script(POOL_ADDRESS, "regtest")
    with node_template_provider(tmp_path, n_blocks=110, n_txs=2) as node:
        chain = node.chain
        core_dir = tmp_path / "core"
        ipc = IpcMiningServer(chain, node.mempool, socket_path(core_dir, "regtest"))
        ipc.start()
        solo_source = NodeTemplateSource(chain, SOLO, extranonce_size=SPACE)
        pool_port, jds_port = free_port(), free_port()
        config = tmp_path / "pool_sv2.toml"
        config.write_text(pool_with_jds_config(pool_port, jds_port, core_dir))
        log_path = tmp_path / "pool_sv2.log"
        proxy_keys = load_or_create_keys(tmp_path / "proxy-keys", now=int(time.time()))
        start_height = chain.height
        with log_path.open("w") as log:
            pool = subprocess.Popen(
                [str(binary), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
            try:
                connect_retrying(pool_port, timeout=30).close()
                connect_retrying(jds_port, timeout=30).close()
                jd = JdUpstream(
                    JdConfig(
                        "127.0.0.1", pool_port, "127.0.0.1", jds_port, SRI_PUBLIC,
                        "127.0.0.1", node.tp.port, node.tp.keys.authority_public,
                        user_identity="jd.worker", nominal_hash_rate=0.0,
                        connect_timeout=10, timeout=15,
                    ),
                    SPACE,
                )  # fmt: skip
                solo = SoloUpstream(solo_source, SPACE)
                policy = HealthPolicy(
                    connect_timeout=30, no_job_timeout=600, retry_after=600, tick=0.05
                )

                async def scenario() -> None:
                    async with failover_proxy([jd, solo], SPACE, policy, proxy_keys) as rig:
                        await _declare_mine_and_fall_back(
                            rig, jd, solo, pool, node, pool_script, start_height
                        )

                asyncio.run(scenario())
            except BaseException:
                log.flush()
                print(log_path.read_text()[-6000:])
                raise
            finally:
                pool.kill()
                pool.wait(timeout=10)
                ipc.close()
                solo_source.close()


async def _declare_mine_and_fall_back(rig, jd, solo, pool, node, pool_script, start_height):
    failover, chain = rig.failover, node.chain
    await until(lambda: failover.current() is not None, timeout=60, what="declared work")
    assert failover.active.upstream is jd
    # A token from SRI's JDS, the job declared (checked by the JDS on our node over IPC),
    # then set as a custom job on pool_sv2's channel: only then does work reach miners.
    session = jd.session
    assert jd.stats.works >= 1 and session is not None
    assert session.blocks == 0

    ext = await rig.open_miner("miner.ext")
    client = rig.client
    await client.await_work(ext)
    assert ext.prevhash.prev_hash == chain.tip.hash
    # The coinbase pays the pool's script (the output SRI's JDS handed out with the token).
    job = ext.job
    assert pool_script in job.coinbase_tx_suffix

    # Shares: accepted downstream, forwarded on the custom job, acknowledged by pool_sv2.
    nonce = 0
    for _ in range(3):
        share, _ = mine(ext, MAX, above=REGTEST_TARGET, start=nonce, extranonce=b"\1\2\3\4")
        nonce = share.nonce + 1
        client.send(share)
        await client.expect(SubmitSharesSuccess, channel_id=ext.channel_id)
    await until(lambda: jd.stats.accepted >= 3, timeout=20, what="pool_sv2 acks")
    assert jd.stats.rejected == 0

    # A block found two hops down: our node connects it, paying the pool.
    share, _ = mine(ext, REGTEST_TARGET, start=nonce, extranonce=b"\5\6\7\x08")
    client.send(share)
    await until(lambda: chain.height == start_height + 1, timeout=20, what="block on our node")
    block = chain.get_block(chain.tip.hash)
    assert block is not None
    assert any(out.script_pubkey == pool_script for out in block.txs[0].outputs)
    assert {t.txid for t in block.txs[1:]} == {t.txid for t in node.txs}
    assert jd.session.blocks == 1  # our JD client pushed the solution to SRI's JDS too

    # pool_sv2 (and its JDS) stop: the JD client fails, the failover mines solo on our node.
    pool.kill()
    await until(lambda: _active(failover) is solo, timeout=60, what="fallback to solo")
    await _job_paying(client, ext, SOLO)
    share, _ = mine(ext, REGTEST_TARGET, extranonce=b"\x09\x09\x09\x09")
    client.send(share)
    await until(lambda: chain.height == start_height + 2, timeout=20, what="solo block")
    block = chain.get_block(chain.tip.hash)
    assert block is not None and block.txs[0].outputs[0].script_pubkey == SOLO
    history = [h[1] for h in failover.counters.history if h[2] == "active"]
    assert history == [jd.name, solo.name]


def _active(failover):
    return failover.active.upstream if failover.active is not None else None


async def _job_paying(client, ext, script: bytes) -> None:
    """Skip jobs already on the way (the pool's) up to the first one paying `script`."""
    while True:
        ext.job = await client.expect(NewExtendedMiningJob, channel_id=ext.channel_id, timeout=30)
        if ext.job.min_ntime is None:
            ext.prevhash = await client.expect(SetNewPrevHash, channel_id=ext.channel_id)
        if script in ext.job.coinbase_tx_suffix:
            return

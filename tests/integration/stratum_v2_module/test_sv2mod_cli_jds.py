"""`blvm node` + `blvm stratum` with `jds_listen`: a JD client's declared job becomes a block.

Two processes as systemd runs them. Our JD client connection allocates a token at the module's
JDS, declares a job on the node's tip, sets it on the module's SV2 listener with
SetCustomMiningJob and submits a share that is a regtest block: the module checks it as a
share of the custom job and submits it to the node through the JDS's RPC client (cookie from
the configured node datadir); the node's height rises.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

from appliance.stratum_v2.jobs import SOLO_EXTRANONCE_SPACE
from appliance.stratum_v2.keys import load_or_create_keys
from protocols.bitcoin.address import address_to_script
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.merkle import root_from_branch
from protocols.bitcoin.tx import Tx, TxOut
from protocols.sv2 import keys as sv2keys
from protocols.sv2.messages import (
    AllocateMiningJobToken,
    AllocateMiningJobTokenSuccess,
    DeclareMiningJob,
    DeclareMiningJobSuccess,
    MiningClientFlags,
    SetCustomMiningJob,
    SetCustomMiningJobSuccess,
    SetupConnectionSuccess,
    SubmitSharesExtended,
    SubmitSharesSuccess,
)
from tests.helpers.jd_rig import jd_coinbase, jd_connect
from tests.helpers.sri import REGTEST_NBITS, REGTEST_TARGET, free_port, grind
from tests.integration.stratum_v2.sv2srv_client import Sv2TestClient
from tests.integration.stratum_v2_module.test_sv2mod_cli_solo import blvm, rpc, wait_until

PAYOUT = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
SPACE = SOLO_EXTRANONCE_SPACE  # solo with no pools: the SV2 maximum


async def declare_and_mine(jds_port: int, sv2_port: int, authority: bytes, tip: bytes) -> bytes:
    """Declare a coinbase-only job on `tip` at height 1 and mine it; returns the block hash."""
    script = address_to_script(PAYOUT, "regtest")
    jd = await jd_connect(jds_port, authority)
    await jd.expect(SetupConnectionSuccess)
    jd.send(AllocateMiningJobToken("cli-test", 1))
    token = await jd.expect(AllocateMiningJobTokenSuccess)
    coinbase = jd_coinbase(1, [TxOut(50 * 100_000_000, script)], [], SPACE)
    version, ntime = 0x20000000, int(time.time())
    jd.send(
        DeclareMiningJob(
            1, token.mining_job_token, version, coinbase.prefix, coinbase.suffix, (), b""
        )
    )
    declared = await jd.expect(DeclareMiningJobSuccess)

    miner = await Sv2TestClient.connect(sv2_port, authority)
    assert isinstance(
        await miner.setup(MiningClientFlags.REQUIRES_WORK_SELECTION), SetupConnectionSuccess
    )
    view = await miner.open_extended("jdc", min_size=SPACE - 4)
    miner.send(
        SetCustomMiningJob(
            view.channel_id, 2, declared.new_mining_job_token, version, tip, ntime,
            REGTEST_NBITS, 2, coinbase.script_prefix, 0xFFFFFFFF, coinbase.outputs, 0, (),
        )
    )  # fmt: skip
    job = await miner.expect(SetCustomMiningJobSuccess)
    part = bytes(view.extranonce_size)
    cb = Tx.from_bytes(coinbase.prefix + view.extranonce_prefix + part + coinbase.suffix)
    root = root_from_branch(cb.txid, [])
    head = version.to_bytes(4, "little") + tip + root + ntime.to_bytes(4, "little")
    head += REGTEST_NBITS.to_bytes(4, "little")
    nonce = grind(head, min(view.target, REGTEST_TARGET))
    assert nonce is not None
    miner.send(SubmitSharesExtended(view.channel_id, 1, job.job_id, nonce, ntime, version, part))
    await miner.expect(SubmitSharesSuccess)
    miner.close()
    jd.close()
    return sha256d(head + nonce.to_bytes(4, "little"))


def test_sv2mod_cli_jds_declared_job_mines_a_block(tmp_path: Path) -> None:
    datadir = tmp_path / "node"
    rpc_port, tp_port, sv2_port, jds_port = (free_port() for _ in range(4))
    state = tmp_path / "sv2keys"
    state.mkdir()
    keys = load_or_create_keys(state, now=int(time.time()))
    config = tmp_path / "blvm.toml"
    config.write_text(
        f"""[node]
chain = "regtest"

[modules.stratum-v2]
payout_address = "{PAYOUT}"
pools = ["solo"]
sv2_listen = "127.0.0.1:{sv2_port}"
sv1_listen = "off"
shares_per_minute = 600
node_tp = "127.0.0.1:{tp_port}"
jds_listen = "127.0.0.1:{jds_port}"
node_rpc = "127.0.0.1:{rpc_port}"
node_rpc_cookie_dir = "{datadir}"
"""
    )
    node_log, mod_log = tmp_path / "node.log", tmp_path / "stratum.log"
    with node_log.open("wb") as nlog, mod_log.open("wb") as mlog:
        node = subprocess.Popen(
            blvm(
                "node", "--datadir", str(datadir), "--no-listen", "--rpcport", str(rpc_port),
                "--sv2-tp-port", str(tp_port),
            ),
            stdout=nlog,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        module = None
        try:
            wait_until(lambda: (datadir / ".cookie").exists(), "the node's RPC cookie")
            wait_until(lambda: rpc(rpc_port, datadir, "getblockcount") == 0, "the node RPC")
            tip = bytes.fromhex(rpc(rpc_port, datadir, "getbestblockhash"))[::-1]
            module = subprocess.Popen(
                blvm("stratum", "--config", str(config), "--state-dir", str(state)),
                stdout=mlog,
                stderr=subprocess.STDOUT,
            )
            wait_until(lambda: "Job Declaration Server on" in mod_log.read_text(), "the JDS")
            authority = sv2keys.decode_authority_public_key(keys.authority_public)
            block_hash = asyncio.run(declare_and_mine(jds_port, sv2_port, authority, tip))
            wait_until(lambda: rpc(rpc_port, datadir, "getblockcount") == 1, "height 1")
            assert bytes.fromhex(rpc(rpc_port, datadir, "getbestblockhash"))[::-1] == block_hash
            module.send_signal(signal.SIGTERM)
            assert module.wait(30) == 0, mod_log.read_text()
        finally:
            if module is not None and module.poll() is None:
                module.kill()
                module.wait(10)
            node.terminate()
            node.wait(30)

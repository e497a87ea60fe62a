"""SRI's `mining_device` (a real SV2 CPU miner) against our SV2 server over a regtest node.

mining_device pins our authority key (`-p`), so the Noise handshake checks our persisted key
and certificate; it sends SetupConnection and OpenStandardMiningChannel (with its measured
hash rate, from which our vardiff sets the starting target), mines the NewMiningJob +
SetNewPrevHash we derive from the node's template, and submits shares. On regtest the share
target is harder than the network target, so accepted shares are blocks: the Chainstate
connects them, and the clean jobs that follow are mined too. That proves both sides agree
on every byte (prev_hash, per-channel merkle root, target, header fields).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import NodeTemplateSource
from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from tests.helpers.sri import need_role

pytestmark = pytest.mark.interop

PAYOUT = bytes.fromhex("51")  # OP_TRUE: regtest only


def test_sv2_mining_device_mines_blocks_through_our_server(tmp_path: Path) -> None:
    mining_device = need_role("mining_device")
    chain = Chainstate.open(tmp_path / "chain", REGTEST, script_threads=1)
    source = NodeTemplateSource(chain, PAYOUT)
    keys = load_or_create_keys(tmp_path / "keys", now=int(time.time()))
    # Many shares a minute keep the test short; mining_device hashes ~1 MH/s on one core.
    config = Sv2ServerConfig(
        host="127.0.0.1", port=0, shares_per_minute=30.0, ack_batch=1, refresh_interval=2.0
    )
    log_path = tmp_path / "mining_device.log"

    async def scenario() -> None:
        server = Sv2Server(source, keys.static_secret, keys.certificate, config)
        await server.start()
        log = log_path.open("w")
        proc = await asyncio.create_subprocess_exec(
            str(mining_device),
            "-a", f"127.0.0.1:{server.port}",
            "-p", keys.authority_public,
            "--id-user", "blvm-interop",
            "--cores", "1",
            stdout=log,
            stderr=log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if server.counters.shares_accepted >= 5 and chain.tip.height >= 3:
                    break
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.5)
            status = server.status()
            worker = status["workers"].get("blvm-interop")
            assert worker is not None, f"no channel opened; log: {log_path.read_text()[-2000:]}"
            assert worker["accepted"] >= 5, status
            assert chain.tip.height >= 3 and server.counters.blocks_accepted >= 3, status
            assert not worker["rejected"].get("difficulty-too-low"), status
        finally:
            proc.kill()
            await proc.wait()
            log.close()
            await server.close()

    try:
        asyncio.run(scenario())
    finally:
        source.close()
        chain.close()

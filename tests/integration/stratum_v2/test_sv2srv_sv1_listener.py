"""The SV1 listener: a Stratum V1 miner (our `protocols.stratum_v1` client) mines through
the same jobs/shares code over a regtest Chainstate; a block-meeting share is connected,
then a clean mining.notify on the new tip follows and old-job shares are refused."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest

from appliance.stratum_v2.jobs import DEFAULT_EXTRANONCE_SPACE, SOLO_EXTRANONCE_SPACE
from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import NodeTemplateSource
from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from protocols.stratum_v1 import events as ev
from protocols.stratum_v1.connection import ClientConnection
from protocols.stratum_v1.errors import ErrorCode
from protocols.stratum_v1.shares import share_header
from protocols.stratum_v1.work import difficulty_to_target

ROLL = 0x00002000  # one BIP320 bit


class Sv1Miner:
    def __init__(self, reader, writer, worker: str = "alice.sv1") -> None:
        self.reader, self.writer, self.worker = reader, writer, worker
        self.conn = ClientConnection("blvm-sv1-test")
        self.events: list[object] = []

    def send(self, event) -> None:
        self.writer.write(self.conn.send(event))

    async def expect(self, kind: type, timeout: float = 10.0):
        async with asyncio.timeout(timeout):
            while True:
                for i, event in enumerate(self.events):
                    if isinstance(event, kind):
                        return self.events.pop(i)
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed")
                self.events += self.conn.receive_data(data)

    def mine(self, notify: ev.Notify, target: int, *, above: int = -1, start: int = 0):
        extranonce2 = bytes(self.conn.extranonce2_size)
        nonce = start
        while True:
            submit = ev.Submit(self.worker, notify.job_id, extranonce2, notify.ntime, nonce, ROLL)
            header = share_header(notify, self.conn.extranonce1, submit, self.conn.version_mask)
            digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
            if above < int.from_bytes(digest, "little") <= target:
                return submit
            nonce += 1


@pytest.fixture
def node(tmp_path: Path, request: pytest.FixtureRequest):
    space = getattr(request, "param", DEFAULT_EXTRANONCE_SPACE)
    chain = Chainstate.open(tmp_path / "chain", REGTEST, script_threads=1)
    source = NodeTemplateSource(chain, bytes.fromhex("51"), extranonce_size=space)
    keys = load_or_create_keys(tmp_path / "keys", now=int(time.time()))
    yield chain, source, keys
    source.close()
    chain.close()


# 32: solo with no pools, the SV1 miner's extranonce1 carries 24 of them.
@pytest.mark.parametrize("node", [DEFAULT_EXTRANONCE_SPACE, SOLO_EXTRANONCE_SPACE], indirect=True)
def test_sv1_miner_finds_a_block(node) -> None:
    chain, source, keys = node

    async def scenario() -> None:
        config = Sv2ServerConfig(host="127.0.0.1", port=0, sv1_port=0, sv1_initial_hashrate=0.0)
        server = Sv2Server(source, keys.static_secret, keys.certificate, config)
        await server.start()
        try:
            miner = Sv1Miner(*await asyncio.open_connection("127.0.0.1", server.sv1_port))
            miner.send(ev.Configure.version_rolling(0xFFFFFFFF))
            configured = await miner.expect(ev.ConfigureResult)
            assert configured.version_rolling_mask == 0x1FFFE000
            miner.send(ev.Subscribe("blvm-sv1-test"))
            sub = await miner.expect(ev.SubscribeResult)
            assert len(sub.extranonce1) + sub.extranonce2_size == source.extranonce_size
            miner.send(ev.Authorize("alice.sv1", "x"))
            assert (await miner.expect(ev.AuthorizeResult)).authorized
            diff = (await miner.expect(ev.SetDifficulty)).difficulty
            notify = await miner.expect(ev.Notify)
            assert notify.clean_jobs and notify.prevhash == chain.tip.hash
            target = difficulty_to_target(diff)
            network = 2**255
            submit = miner.mine(notify, target, above=network)  # a share, not a block
            miner.send(submit)
            assert (await miner.expect(ev.SubmitResult)).accepted
            miner.send(submit)
            dup = await miner.expect(ev.SubmitResult)
            assert not dup.accepted and dup.error.code == ErrorCode.DUPLICATE_SHARE
            block_share = miner.mine(notify, network // 2, start=submit.nonce + 1)
            miner.send(block_share)
            assert (await miner.expect(ev.SubmitResult)).accepted
            fresh = await miner.expect(ev.Notify)
            assert fresh.clean_jobs and fresh.prevhash == chain.tip.hash
            assert chain.tip.height == 1
            stale = miner.mine(notify, target, start=block_share.nonce + 1)
            miner.send(stale)
            refused = await miner.expect(ev.SubmitResult)
            assert not refused.accepted and refused.error.code == ErrorCode.JOB_NOT_FOUND
            worker = server.status()["workers"]["alice.sv1"]
            assert worker["accepted"] == 2 and worker["blocks_found"] == 1
            miner.writer.close()
        finally:
            await server.close()

    asyncio.run(scenario())


def test_sv1_vardiff_applies_from_the_next_job(node) -> None:
    _chain, source, keys = node

    async def scenario() -> None:
        config = Sv2ServerConfig(
            host="127.0.0.1", port=0, sv1_port=0, sv1_initial_hashrate=0.0, shares_per_minute=6
        )
        server = Sv2Server(source, keys.static_secret, keys.certificate, config)
        await server.start()
        try:
            conn = await asyncio.open_connection("127.0.0.1", server.sv1_port)
            miner = Sv1Miner(*conn, worker="bob.sv1")
            miner.send(ev.Configure.version_rolling(0xFFFFFFFF))
            await miner.expect(ev.ConfigureResult)
            miner.send(ev.Subscribe("blvm-sv1-test"))
            await miner.expect(ev.SubscribeResult)
            miner.send(ev.Authorize("bob.sv1", "x"))
            await miner.expect(ev.AuthorizeResult)
            old_target = difficulty_to_target((await miner.expect(ev.SetDifficulty)).difficulty)
            notify = await miner.expect(ev.Notify)
            nonce = 0
            for _ in range(24):  # 4x the expected count at once: vardiff retargets
                submit = miner.mine(notify, old_target, above=2**255, start=nonce)
                nonce = submit.nonce + 1
                miner.send(submit)
                assert (await miner.expect(ev.SubmitResult)).accepted
            new_target = difficulty_to_target((await miner.expect(ev.SetDifficulty)).difficulty)
            assert new_target < old_target // 4
            fresh = await miner.expect(ev.Notify)
            assert not fresh.clean_jobs and fresh.job_id != notify.job_id
            # the old job keeps its difficulty ...
            floor = max(new_target, 2**255)  # too weak for the new target, and not a block
            late = miner.mine(notify, old_target, above=floor, start=nonce)
            miner.send(late)
            assert (await miner.expect(ev.SubmitResult)).accepted
            # ... the new one has the new difficulty
            weak = miner.mine(fresh, old_target, above=floor)
            miner.send(weak)
            refused = await miner.expect(ev.SubmitResult)
            assert not refused.accepted
            assert refused.error.code == ErrorCode.LOW_DIFFICULTY_SHARE
            miner.writer.close()
        finally:
            await server.close()

    asyncio.run(scenario())

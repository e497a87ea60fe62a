"""Our Job Declaration Server and SV2 server's custom jobs, against our real regtest node.

The node is real (chainstate, mempool, JSON-RPC with cookie auth, as `blvm node` serves it);
the JD client is our own Sv2Connection speaking the messages SRI's JDC sends. Each decision is
checked on the wire, and solutions are checked by the node connecting the block.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.stratum_v2.jd_server import JdServer, JdServerConfig
from appliance.stratum_v2.jd_tokens import JobTokenRegistry
from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import NodeTemplateSource
from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from node.mempool import Mempool
from node.mining.template import TemplateBuilder
from protocols.bitcoin.merkle import merkle_branch, root_from_branch
from protocols.bitcoin.tx import Tx, TxOut
from protocols.sv2 import keys as sv2keys
from protocols.sv2.messages import (
    AllocateMiningJobToken,
    AllocateMiningJobTokenSuccess,
    DeclareMiningJob,
    DeclareMiningJobError,
    DeclareMiningJobSuccess,
    MiningClientFlags,
    ProvideMissingTransactions,
    ProvideMissingTransactionsSuccess,
    PushSolution,
    SetCustomMiningJob,
    SetCustomMiningJobError,
    SetCustomMiningJobSuccess,
    SetupConnectionError,
    SetupConnectionSuccess,
    SubmitSharesExtended,
    SubmitSharesSuccess,
)
from tests.helpers.jd_rig import jd_coinbase, jd_connect, node_rpc
from tests.helpers.sri import REGTEST_TARGET, grind, sha256d
from tests.integration.stratum_v2.sv2srv_client import Sv2TestClient
from tests.unit.mempool.mempool_tools import FakeClock, regtest_chain, spend

POOL = bytes.fromhex("0014") + bytes(range(20))  # P2WPKH of the pool
THIEF = bytes.fromhex("0014") + bytes(20)
SPACE = 20  # our server's extranonce space: a JD client's full extranonce on our channels


class Rig:
    """Regtest node with two mempool spends and one valid spend kept out of the mempool."""

    def __init__(self, tmp: Path) -> None:
        blocks, coins = regtest_chain(110, seed=b"jd-server-tests")
        self.chain = Chainstate.open(tmp / "node", REGTEST, script_threads=1)
        for raw in blocks:
            assert self.chain.process_block(raw).status is BlockStatus.ACCEPTED
        self.mempool = Mempool(self.chain, clock=FakeClock())
        for n, coin in enumerate(coins[:2]):
            tx, _ = spend([coin], 1, fee=2_000 + 1_000 * n)
            assert self.mempool.accept(tx).accepted
        self.outsider, _ = spend([coins[2]], 1, fee=3_000)  # valid, unknown to the mempool
        self.forged, _ = spend([coins[3]], 1, fee=3_000, sign=False)  # invalid: no signature
        self.keys = load_or_create_keys(tmp / "keys", now=int(time.time()))
        self.authority = sv2keys.decode_authority_public_key(self.keys.authority_public)
        self.tmp = tmp

    def declaration(
        self,
        token: bytes,
        *,
        extra: bool = False,
        payout: bytes = POOL,
        overpay: int = 0,
        outsider: Tx | None = None,
    ):
        """(DeclareMiningJob, coinbase, txs, template) for the node's template (+ outsider)."""
        template = TemplateBuilder(self.chain, self.mempool).build()
        txs = [t.tx for t in template.transactions]
        if extra or outsider is not None:
            txs.append(outsider or self.outsider)
        value = template.coinbasevalue + overpay
        coinbase = jd_coinbase(template.height, [TxOut(value, payout)], txs, SPACE)
        msg = DeclareMiningJob(
            7, token, template.version, coinbase.prefix, coinbase.suffix,
            tuple(t.wtxid for t in txs), b"",
        )  # fmt: skip
        return msg, coinbase, txs, template

    def close(self) -> None:
        self.mempool.close()
        self.chain.close()


@pytest.fixture
def rig(tmp_path: Path):
    r = Rig(tmp_path)
    yield r
    r.close()


async def _token(client, request_id: int = 1) -> AllocateMiningJobTokenSuccess:
    client.send(AllocateMiningJobToken("jd-test", request_id))
    return await client.expect(AllocateMiningJobTokenSuccess)


def test_jds_decisions_and_push_solution(rig: Rig) -> None:
    tokens = JobTokenRegistry()

    async def scenario() -> None:
        with node_rpc(rig.chain, rig.mempool, rig.tmp / "cookie") as rpc:
            jds = JdServer(
                tokens, rig.keys.static_secret, rig.keys.certificate, rpc, POOL,
                JdServerConfig(host="127.0.0.1", port=0),
            )  # fmt: skip
            await jds.start()
            try:
                # Without DECLARE_TX_DATA we could not check the job: refused.
                bare = await jd_connect(jds.port, rig.authority, flags=0)
                assert (await bare.next()).error_code == "missing-declare-tx-data-flag"
                bare.close()

                client = await jd_connect(jds.port, rig.authority)
                assert isinstance(await client.next(), SetupConnectionSuccess)

                # A token we never handed out.
                msg, *_ = rig.declaration(b"\x01" * 8)
                client.send(msg)
                err = await client.expect(DeclareMiningJobError)
                assert err.error_code == "invalid-mining-job-token"

                # The pool's output comes with the token, value 0 for the client to fill.
                ok = await _token(client)
                assert ok.coinbase_outputs == bytes([1]) + TxOut(0, POOL).serialize()

                # A coinbase paying someone else.
                msg, *_ = rig.declaration(ok.mining_job_token, payout=THIEF)
                client.send(msg)
                err = await client.expect(DeclareMiningJobError)
                assert err.error_code == "invalid-coinbase-tx-outputs", err
                # ... and the token is spent by the refusal.
                client.send(rig.declaration(ok.mining_job_token)[0])
                err = await client.expect(DeclareMiningJobError)
                assert err.error_code == "invalid-mining-job-token"

                # A transaction our mempool lacks is asked for; a wrong one is refused.
                ok = await _token(client, 2)
                msg, coinbase, txs, template = rig.declaration(ok.mining_job_token, extra=True)
                client.send(msg)
                ask = await client.expect(ProvideMissingTransactions)
                assert ask.unknown_tx_position_list == (len(txs) - 1,)
                client.send(ProvideMissingTransactionsSuccess(7, (txs[0].serialize(),)))
                err = await client.expect(DeclareMiningJobError)
                assert err.error_code == "missing-txs", err

                # Our node checks the whole block: a coinbase paying more than subsidy + fees,
                # or a supplied transaction whose signature is missing, is an invalid job.
                ok = await _token(client, 4)
                client.send(rig.declaration(ok.mining_job_token, overpay=1)[0])
                err = await client.expect(DeclareMiningJobError)
                assert (err.error_code, err.error_details) == ("invalid-job", b"bad-cb-amount")
                ok = await _token(client, 5)
                msg, *_ = rig.declaration(ok.mining_job_token, outsider=rig.forged)
                client.send(msg)
                await client.expect(ProvideMissingTransactions)
                client.send(ProvideMissingTransactionsSuccess(7, (rig.forged.serialize(),)))
                err = await client.expect(DeclareMiningJobError)
                assert err.error_code == "invalid-job", err
                assert err.error_details.startswith(b"block-script-verify-flag-failed"), err
                assert jds.counters.jobs_declared == 0

                # The right one makes the job declared.
                ok = await _token(client, 3)
                msg, coinbase, txs, template = rig.declaration(ok.mining_job_token, extra=True)
                client.send(msg)
                await client.expect(ProvideMissingTransactions)
                client.send(ProvideMissingTransactionsSuccess(7, (rig.outsider.serialize(),)))
                declared = await client.expect(DeclareMiningJobSuccess)
                assert declared.new_mining_job_token != ok.mining_job_token
                assert jds.counters.jobs_declared == 1

                # A solution for it: the JDS rebuilds the block, our node connects it.
                extranonce = bytes(range(SPACE))
                full = coinbase.prefix + extranonce + coinbase.suffix
                cb = Tx.from_bytes(full)
                path = merkle_branch([bytes(32), *(t.txid for t in txs)], 0)
                root = root_from_branch(cb.txid, path)
                ntime = template.curtime
                head = (
                    template.version.to_bytes(4, "little")
                    + template.previousblockhash
                    + root
                    + ntime.to_bytes(4, "little")
                    + template.bits.to_bytes(4, "little")
                )
                nonce = grind(head, REGTEST_TARGET)
                assert nonce is not None
                client.send(
                    PushSolution(
                        extranonce=extranonce, prev_hash=template.previousblockhash,
                        nonce=nonce, ntime=ntime, nbits=template.bits, version=template.version,
                    )
                )  # fmt: skip
                block_hash = sha256d(head + nonce.to_bytes(4, "little"))
                deadline = time.monotonic() + 10
                while rig.chain.tip.hash != block_hash:
                    assert time.monotonic() < deadline, jds.status()
                    await asyncio.sleep(0.05)
                assert jds.counters.blocks_accepted == 1
                assert rig.chain.tip.height == template.height
                client.close()
            finally:
                await jds.close()

            # A restarted JDS (fresh registry) knows no earlier token.
            jds2 = JdServer(
                JobTokenRegistry(), rig.keys.static_secret, rig.keys.certificate, rpc, POOL,
                JdServerConfig(host="127.0.0.1", port=0),
            )  # fmt: skip
            await jds2.start()
            try:
                client = await jd_connect(jds2.port, rig.authority)
                await client.expect(SetupConnectionSuccess)
                client.send(rig.declaration(ok.mining_job_token)[0])
                err = await client.expect(DeclareMiningJobError)
                assert err.error_code == "invalid-mining-job-token"
                client.close()
            finally:
                await jds2.close()

    asyncio.run(scenario())


def test_custom_job_on_our_server_mines_a_block(rig: Rig) -> None:
    tokens = JobTokenRegistry()
    source = NodeTemplateSource(rig.chain, POOL, rig.mempool)

    async def scenario() -> None:
        with node_rpc(rig.chain, rig.mempool, rig.tmp / "cookie") as rpc:
            jds = JdServer(
                tokens, rig.keys.static_secret, rig.keys.certificate, rpc, POOL,
                JdServerConfig(host="127.0.0.1", port=0),
            )  # fmt: skip
            pool = Sv2Server(
                source, rig.keys.static_secret, rig.keys.certificate,
                Sv2ServerConfig(host="127.0.0.1", port=0, ack_batch=1),
                job_tokens=tokens,
            )  # fmt: skip
            await jds.start()
            await pool.start()
            try:
                jd = await jd_connect(jds.port, rig.authority)
                await jd.expect(SetupConnectionSuccess)
                ok = await _token(jd)
                msg, coinbase, txs, template = rig.declaration(ok.mining_job_token)
                jd.send(msg)
                declared = await jd.expect(DeclareMiningJobSuccess)

                miner = await _mining_client(pool.port, rig.authority)
                view = await miner.open_extended("jdc", min_size=SPACE - 4)
                assert len(view.extranonce_prefix) + view.extranonce_size == SPACE

                def custom(token: bytes, **change) -> SetCustomMiningJob:
                    fields = dict(
                        channel_id=view.channel_id, request_id=5, mining_job_token=token,
                        version=template.version, prev_hash=template.previousblockhash,
                        min_ntime=template.curtime, nbits=template.bits,
                        coinbase_tx_version=2, coinbase_prefix=coinbase.script_prefix,
                        coinbase_tx_input_n_sequence=0xFFFFFFFF,
                        coinbase_tx_outputs=coinbase.outputs, coinbase_tx_locktime=0,
                        merkle_path=tuple(merkle_branch([bytes(32)] + [t.txid for t in txs], 0)),
                    )  # fmt: skip
                    fields.update(change)
                    return SetCustomMiningJob(**fields)

                miner.send(custom(b"\x02" * 8))
                err = await miner.expect(SetCustomMiningJobError)
                assert err.error_code == "invalid-mining-job-token"
                miner.send(custom(declared.new_mining_job_token, coinbase_tx_locktime=1))
                err = await miner.expect(SetCustomMiningJobError)
                assert err.error_code == "invalid-coinbase-tx-locktime"
                # The check did not use the token up.
                miner.send(custom(declared.new_mining_job_token))
                job = await miner.expect(SetCustomMiningJobSuccess)

                # A share on the custom job validates through the normal path; on regtest it
                # is a block, which goes to our node through the JDS.
                miner_part = bytes(view.extranonce_size)
                full = view.extranonce_prefix + miner_part
                cb = Tx.from_bytes(coinbase.prefix + full + coinbase.suffix)
                root = root_from_branch(
                    cb.txid, merkle_branch([bytes(32)] + [t.txid for t in txs], 0)
                )
                head = (
                    template.version.to_bytes(4, "little") + template.previousblockhash + root
                    + template.curtime.to_bytes(4, "little") + template.bits.to_bytes(4, "little")
                )  # fmt: skip
                nonce = grind(head, min(REGTEST_TARGET, view.target))
                assert nonce is not None
                miner.send(
                    SubmitSharesExtended(
                        view.channel_id, 1, job.job_id, nonce, template.curtime,
                        template.version, miner_part,
                    )
                )  # fmt: skip
                await miner.expect(SubmitSharesSuccess)
                block_hash = sha256d(head + nonce.to_bytes(4, "little"))
                deadline = time.monotonic() + 10
                while rig.chain.tip.hash != block_hash:
                    assert time.monotonic() < deadline, (pool.status(), jds.status())
                    await asyncio.sleep(0.05)
                assert pool.counters.blocks_accepted == 1
                miner.close()
                jd.close()
            finally:
                await pool.close()
                await jds.close()

    try:
        asyncio.run(scenario())
    finally:
        source.close()


async def _mining_client(port: int, authority: bytes):
    client = await Sv2TestClient.connect(port, authority)
    ok = await client.setup(MiningClientFlags.REQUIRES_WORK_SELECTION)
    assert isinstance(ok, SetupConnectionSuccess) and ok.flags == 2, ok
    return client


def test_work_selection_refused_without_a_jds(rig: Rig) -> None:
    source = NodeTemplateSource(rig.chain, POOL, rig.mempool)

    async def scenario() -> None:
        pool = Sv2Server(
            source, rig.keys.static_secret, rig.keys.certificate,
            Sv2ServerConfig(host="127.0.0.1", port=0),
        )  # fmt: skip
        await pool.start()
        try:
            client = await Sv2TestClient.connect(pool.port, rig.authority)
            reply = await client.setup(MiningClientFlags.REQUIRES_WORK_SELECTION)
            assert isinstance(reply, SetupConnectionError)
            assert reply.error_code == "unsupported-feature-flags"
            client.close()
        finally:
            await pool.close()

    try:
        asyncio.run(scenario())
    finally:
        source.close()

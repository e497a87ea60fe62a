"""Bitcoin Core's IPC Mining interface on our node, driven by a Cap'n Proto client (pycapnp).

The client calls what SRI's pool and JDS call (see tests/interop/sv2 for the real ones):
the libmultiprocess handshake, templates and their parts, checkBlock, submitSolution, and
the waits (new tip, fee rise, timeout, interrupt). The chain and mempool are real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import stat
import time
from pathlib import Path

import capnp
import pytest

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.headers import check_proof_of_work
from node.chain.params import REGTEST
from node.ipc.mining_ipc import IpcMiningServer, load_schemas, socket_path
from node.mempool import Mempool
from node.mining.assembler import solve
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.merkle import merkle_root, root_from_branch
from protocols.bitcoin.tx import Tx, TxIn, TxOut
from tests.unit.mempool.mempool_tools import FakeClock, mine, regtest_chain, spend

INIT, MINING, PROXY = load_schemas()
# Bitcoin Core's ids (schema 30, as bitcoin-capnp-types 0.1.2 ships them): calls carry them.
CORE_IDS = {
    (INIT, "Init"): 0x8838C700BA5CBA65,
    (MINING, "Mining"): 0xF9C68436DF3AF39E,
    (MINING, "BlockTemplate"): 0xF9671AD841B2F622,
    (MINING, "BlockCreateOptions"): 0x80FCA083EF81A559,
    (MINING, "BlockWaitOptions"): 0x9BA437D9DE0C452E,
    (MINING, "BlockCheckOptions"): 0x89F3F39B6C9DD162,
    (PROXY, "ThreadMap"): 0xEE5E37179AD9DC9D,
    (PROXY, "Thread"): 0x81C1E2600D0B56C5,
    (PROXY, "Context"): 0x9C44E6645D0B22C6,
}


def test_schema_ids_are_bitcoin_cores() -> None:
    for (module, name), wanted in CORE_IDS.items():
        assert getattr(module, name).schema.node.id == wanted, name


class Node:
    def __init__(self, tmp: Path) -> None:
        blocks, self.coins = regtest_chain(110, seed=b"ipc-tests")
        self.chain = Chainstate.open(tmp / "node", REGTEST, script_threads=1)
        for raw in blocks:
            assert self.chain.process_block(raw).status is BlockStatus.ACCEPTED
        self.mempool = Mempool(self.chain, clock=FakeClock())
        self.tx, _ = spend([self.coins[0]], 1, fee=5_000)
        assert self.mempool.accept(self.tx).accepted
        self.server = IpcMiningServer(
            self.chain, self.mempool, socket_path(tmp / "core", "regtest")
        )


@pytest.fixture
def node(tmp_path: Path):
    n = Node(tmp_path)
    n.server.path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(n.server.path))  # a socket file nobody serves: a killed node's, replaced
    stale.close()
    n.server.start()
    yield n
    n.server.close()
    n.mempool.close()
    n.chain.close()


def session(node: Node, body) -> None:
    async def main() -> None:
        stream = await capnp.AsyncIoStream.create_unix_connection(str(node.server.path))
        client = capnp.TwoPartyClient(stream)
        init = client.bootstrap().cast_as(INIT.Init)
        thread_map = (await init.construct()).threadMap
        thread = (await thread_map.makeThread("test")).result
        assert (await thread.getName()).result == "test"
        ctx = {"thread": thread}
        mining = (await init.makeMining(context=ctx)).result
        await body(mining, ctx)

    asyncio.run(capnp.run(main()))


def test_socket_is_private_and_guarded(node: Node, tmp_path: Path) -> None:
    assert stat.S_IMODE(os.stat(node.server.path).st_mode) == 0o600
    assert node.server.path.is_socket()
    assert node.server.path == node.server.path.parent.parent / "regtest" / "node.sock"
    # A second server on a live socket, or on a path holding a regular file, refuses.
    second = IpcMiningServer(node.chain, node.mempool, node.server.path)
    with pytest.raises(OSError, match="another process serves it"):
        second.start()
    second.node.close()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    third = IpcMiningServer(node.chain, node.mempool, precious)
    with pytest.raises(OSError, match="something else is there"):
        third.start()
    third.node.close()
    assert precious.read_text() == "keep me"


def test_template_parts_agree_and_check_block(node: Node) -> None:
    chain = node.chain

    async def body(mining, ctx) -> None:
        tip = await mining.getTip(context=ctx)
        assert tip.hasResult and tip.result.height == chain.height
        assert bytes(tip.result.hash) == chain.tip.hash
        assert (await mining.isTestChain(context=ctx)).result is True
        assert (await mining.isInitialBlockDownload(context=ctx)).result is False
        template = (await mining.createNewBlock(options={"useMempool": True})).result
        header = BlockHeader.from_bytes(bytes((await template.getBlockHeader(context=ctx)).result))
        block = Block.from_bytes(bytes((await template.getBlock(context=ctx)).result))
        coinbase = Tx.from_bytes(bytes((await template.getCoinbaseTx(context=ctx)).result))
        path = [bytes(h) for h in (await template.getCoinbaseMerklePath(context=ctx)).result]
        assert header.prev_hash == chain.tip.hash and header == block.header
        assert block.txs[0].txid == coinbase.txid
        assert [t.txid for t in block.txs[1:]] == [node.tx.txid]
        assert root_from_branch(coinbase.txid, path) == header.merkle_root
        assert list((await template.getTxFees(context=ctx)).result) == [5_000]
        index = (await template.getWitnessCommitmentIndex(context=ctx)).result
        commitment = bytes((await template.getCoinbaseCommitment(context=ctx)).result)
        assert coinbase.outputs[index].script_pubkey == commitment

    async def cases(mining, ctx) -> None:
        template = (await mining.createNewBlock(options={"useMempool": True})).result
        block = Block.from_bytes(bytes((await template.getBlock(context=ctx)).result))
        raw = block.serialize()
        ok = await mining.checkBlock(
            block=raw, options={"checkPow": False, "checkMerkleRoot": True}
        )
        assert (ok.result, ok.reason) == (True, "")
        # Regtest's target passes about every other hash: pick a nonce that misses it, and
        # one that meets it.
        misses = meets = None
        for nonce in range(64):
            header = dataclasses.replace(block.header, nonce=nonce)
            good = check_proof_of_work(header.hash, header.bits, REGTEST)
            if good and meets is None:
                meets = Block(header, block.txs)
            if not good and misses is None:
                misses = Block(header, block.txs)
        assert misses is not None and meets is not None
        pow_checked = await mining.checkBlock(
            block=misses.serialize(), options={"checkPow": True, "checkMerkleRoot": True}
        )
        assert (pow_checked.result, pow_checked.reason) == (False, "high-hash")
        solved = await mining.checkBlock(
            block=meets.serialize(), options={"checkPow": True, "checkMerkleRoot": True}
        )
        assert (solved.result, solved.reason) == (True, "")
        no_root = Block(
            BlockHeader(
                block.header.version, block.header.prev_hash, bytes(32), block.header.time,
                block.header.bits, 0,
            ),
            block.txs,
        )  # fmt: skip
        unchecked = await mining.checkBlock(
            block=no_root.serialize(), options={"checkPow": False, "checkMerkleRoot": False}
        )
        assert unchecked.result is True
        checked = await mining.checkBlock(
            block=no_root.serialize(), options={"checkPow": False, "checkMerkleRoot": True}
        )
        assert (checked.result, checked.reason) == (False, "bad-txnmrklroot")
        cb = block.txs[0]
        rich = Tx(
            cb.version,
            cb.inputs,
            [TxOut(cb.outputs[0].value + 1, b"\x51"), *cb.outputs[1:]],
            cb.locktime,
        )
        greedy = Block(block.header, [rich, *block.txs[1:]])
        over = await mining.checkBlock(
            block=greedy.serialize(), options={"checkPow": False, "checkMerkleRoot": False}
        )
        assert (over.result, over.reason) == (False, "bad-cb-amount")

    async def both(mining, ctx) -> None:
        await body(mining, ctx)
        await cases(mining, ctx)

    session(node, both)


def test_submit_solution_connects_the_block(node: Node) -> None:
    chain = node.chain
    height = chain.height

    async def body(mining, ctx) -> None:
        template = (await mining.createNewBlock(options={"useMempool": True})).result
        block = Block.from_bytes(bytes((await template.getBlock(context=ctx)).result))
        cb = block.txs[0]
        # The pool's coinbase: its own scriptSig tail and payout, the template's commitment.
        script_sig = cb.inputs[0].script_sig + b"/pool/"
        mine_cb = Tx(
            cb.version,
            [TxIn(cb.inputs[0].prevout, script_sig, cb.inputs[0].sequence, cb.inputs[0].witness)],
            [TxOut(cb.outputs[0].value, bytes.fromhex("0014") + b"\x33" * 20), *cb.outputs[1:]],
            cb.locktime,
        )
        txs = [mine_cb, *block.txs[1:]]
        header = BlockHeader(
            block.header.version, block.header.prev_hash, merkle_root([t.txid for t in txs])[0],
            block.header.time, block.header.bits, 0,
        )  # fmt: skip
        assert solve(header)
        bad = await template.submitSolution(
            context=ctx, version=header.version, timestamp=header.time, nonce=header.nonce,
            coinbase=b"\x00\x01",
        )  # fmt: skip
        assert bad.result is False and chain.height == height
        good = await template.submitSolution(
            context=ctx, version=header.version, timestamp=header.time, nonce=header.nonce,
            coinbase=mine_cb.serialize(),
        )  # fmt: skip
        assert good.result is True
        assert chain.height == height + 1 and chain.tip.hash == header.hash
        assert chain.get_block(header.hash).txs[0].inputs[0].script_sig.endswith(b"/pool/")
        assert len(node.mempool) == 0

    session(node, body)


def test_waits_time_out_wake_on_fees_and_tips_and_interrupt(node: Node) -> None:
    chain = node.chain

    async def body(mining, ctx) -> None:
        template = (await mining.createNewBlock(options={"useMempool": True})).result
        started = time.monotonic()
        nothing = await template.waitNext(
            context=ctx, options={"timeout": 200.0, "feeThreshold": 1}
        )
        assert time.monotonic() - started >= 0.19
        with pytest.raises(capnp.KjException):  # no better template: a null capability
            await nothing.result.getBlockHeader(context=ctx)

        # Fees rise by more than the threshold: a new template, same tip.
        richer, _ = spend([node.coins[1]], 1, fee=9_000)
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, lambda: node.mempool.accept(richer))
        waited = await template.waitNext(
            context=ctx, options={"timeout": 10_000.0, "feeThreshold": 5_000}
        )
        better = Block.from_bytes(bytes((await waited.result.getBlock(context=ctx)).result))
        assert richer.txid in {t.txid for t in better.txs}
        assert better.header.prev_hash == chain.tip.hash

        # A new tip wakes both waits.
        tip = chain.tip.hash
        loop.call_later(0.2, lambda: mine(chain, extra=b"ipc-tip"))
        changed = await mining.waitTipChanged(context=ctx, currentTip=tip, timeout=10_000.0)
        assert bytes(changed.result.hash) == chain.tip.hash != tip
        fresh = await waited.result.waitNext(
            context=ctx, options={"timeout": 10_000.0, "feeThreshold": 10**9}
        )
        header = BlockHeader.from_bytes(
            bytes((await fresh.result.getBlockHeader(context=ctx)).result)
        )
        assert header.prev_hash == chain.tip.hash

        # interruptWait ends a long wait at once.
        last = fresh.result
        pending = last.waitNext(context=ctx, options={"timeout": 60_000.0, "feeThreshold": 10**9})
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await last.interruptWait()
        await pending
        assert time.monotonic() - started < 5

    session(node, body)


def test_blvm_node_ipcbind_serves_and_cleans_up(tmp_path: Path) -> None:
    """`blvm node --ipcbind unix`: node.sock in the datadir while it runs, gone after."""
    import signal
    import subprocess
    import sys

    from tests.helpers.btcd import free_port

    datadir = tmp_path / "regtest"
    sock = datadir / "node.sock"
    log_path = tmp_path / "node.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "appliance.cli", "node", "--datadir", str(datadir),
                "--no-listen", "--rpcport", str(free_port()), "--sv2-tp-port", "0",
                "--ipcbind", "unix",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not (datadir / ".cookie").exists():
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            assert sock.is_socket()

            async def main() -> int:
                stream = await capnp.AsyncIoStream.create_unix_connection(str(sock))
                init = capnp.TwoPartyClient(stream).bootstrap().cast_as(INIT.Init)
                await init.construct()
                mining = (await init.makeMining()).result
                return (await mining.getTip()).result.height

            assert asyncio.run(capnp.run(main())) == 0
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert not sock.exists()
    assert f"IPC mining interface on {sock}" in log_path.read_text()
    bad = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "node", "--datadir", str(datadir), "--ipcbind", "tcp"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--ipcbind 'tcp'" in bad.stderr

"""Our node against btcd over real P2P on loopback (regtest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from node.net.p2p_node import P2PNode
from protocols.bitcoin.hashes import hash_to_hex
from tests.helpers.btcd import Btcd

pytestmark = pytest.mark.interop


@pytest.fixture
def btcd(tmp_path: Path) -> Iterator[Btcd]:
    node = Btcd(tmp_path / "btcd")
    yield node
    node.stop()


async def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


def test_sync_300_blocks_mined_by_btcd(btcd: Btcd, tmp_path: Path) -> None:
    btcd.rpc("generate", 300)
    best = btcd.rpc("getbestblockhash")

    async def scenario() -> tuple[int, str, float]:
        chain = Chainstate.open(tmp_path / "ours", REGTEST)
        node = P2PNode(chain, connect=[("127.0.0.1", btcd.p2p_port)])
        started = time.monotonic()
        await node.start()
        try:
            await _wait_for(lambda: chain.tip.hash_hex == best, 120)
            return chain.height, chain.tip.hash_hex, time.monotonic() - started
        finally:
            await node.stop()
            chain.close()

    height, tip, _ = asyncio.run(scenario())
    assert (height, tip) == (300, best)


def test_btcd_accepts_blocks_we_mine(btcd: Btcd, tmp_path: Path) -> None:
    from node.mining.generate import generate_blocks
    from protocols.bitcoin.address import address_to_script
    from tests.helpers.btcd import REGTEST_MINING_ADDRESS

    script = address_to_script(REGTEST_MINING_ADDRESS, "regtest")

    async def scenario() -> None:
        chain = Chainstate.open(tmp_path / "ours", REGTEST)
        node = P2PNode(chain, connect=[("127.0.0.1", btcd.p2p_port)])
        await node.start()
        try:
            await _wait_for(
                lambda: any(s.conn.handshake_done.is_set() for s in node.peers.values()), 30
            )
            hashes = await node._run_chain(generate_blocks, chain, script, 120)
            tip = hash_to_hex(hashes[-1])
            assert await _wait_for(lambda: btcd.rpc("getbestblockhash") == tip, 60)
            assert btcd.rpc("getblockcount") == 120
        finally:
            await node.stop()
            chain.close()

    asyncio.run(scenario())


def _replayed_utxo_stats(chain: Chainstate, datadir: Path):
    """UTXO stats of a fresh chainstate fed our active chain's blocks in order."""
    fresh = Chainstate.open(datadir, REGTEST)
    try:
        for height in range(1, chain.height + 1):
            raw = chain.get_block_bytes(chain.block_hash_at(height))
            assert fresh.process_block(raw).tip_changed
        return fresh.utxo_stats()
    finally:
        fresh.close()


def test_split_mine_reconnect_converges_both_ways(btcd: Btcd, tmp_path: Path) -> None:
    from node.mining.generate import generate_blocks
    from protocols.bitcoin.address import address_to_script
    from tests.helpers.btcd import REGTEST_MINING_ADDRESS

    script = address_to_script(REGTEST_MINING_ADDRESS, "regtest")
    chain = Chainstate.open(tmp_path / "ours", REGTEST)

    async def connected(until) -> None:
        node = P2PNode(chain, connect=[("127.0.0.1", btcd.p2p_port)])
        await node.start()
        try:
            assert await _wait_for(until, 60), (chain.height, btcd.rpc("getblockcount"))
        finally:
            await node.stop()

    def same_tip() -> bool:
        return chain.tip.hash_hex == btcd.rpc("getbestblockhash")

    try:
        btcd.rpc("generate", 20)
        asyncio.run(connected(same_tip))
        assert chain.height == 20
        # Split: btcd mines 5, we mine 8; on reconnect btcd must reorg to our chain.
        btcd.rpc("generate", 5)
        ours = generate_blocks(chain, script, 8)
        asyncio.run(connected(same_tip))
        assert btcd.rpc("getblockcount") == 28 and chain.tip.hash == ours[-1]
        # Split again: we mine 2, btcd mines 12; now we must reorg to btcd's chain.
        generate_blocks(chain, script, 2)
        btcd.rpc("generate", 12)
        asyncio.run(connected(same_tip))
        assert chain.height == 40
        replay = _replayed_utxo_stats(chain, tmp_path / "replay")
        assert chain.utxo_stats() == replay
    finally:
        chain.close()


async def _raw_peer(port: int):
    """A bare P2P client (our sans-IO protocol over a socket) that completes the handshake."""
    from protocols.bitcoin.networks import REGTEST as NET
    from protocols.bitcoin.p2p.messages import Verack, Version
    from protocols.bitcoin.p2p.peer import PeerProtocol

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    proto = PeerProtocol(NET.magic)
    writer.write(proto.send(Version(nonce=12345, start_height=0)))
    inbox: list = []
    while not proto.established:
        data = await asyncio.wait_for(reader.read(65536), 10)
        assert data, "node closed the connection during the handshake"
        inbox += proto.receive_data(data)
    writer.write(proto.send(Verack()))
    return reader, writer, proto, inbox


def test_pruned_node_keeps_syncing_and_refuses_deep_requests(btcd: Btcd, tmp_path: Path) -> None:
    from protocols.bitcoin.p2p.messages import (
        BlockMessage,
        GetData,
        InvItem,
        InvType,
        Services,
        Version,
    )

    btcd.rpc("generate", 1200)
    chain = Chainstate.open(tmp_path / "ours", REGTEST, prune_mib=0.1, fast_prune=True)

    async def scenario() -> None:
        node = P2PNode(chain, listen=("127.0.0.1", 0), connect=[("127.0.0.1", btcd.p2p_port)])
        await node.start()
        try:
            best = btcd.rpc("getbestblockhash")
            assert await _wait_for(lambda: chain.tip.hash_hex == best, 120)
            chain.flush()  # pruning runs when the chainstate flushes
            info = chain.prune_info()
            assert info.pruned and info.prune_height > 100, info
            assert chain.get_block_bytes(chain.block_hash_at(10)) is None
            # The pruned node keeps following the chain.
            btcd.rpc("generate", 50)
            best = btcd.rpc("getbestblockhash")
            assert await _wait_for(lambda: chain.tip.hash_hex == best, 60)
            # It advertises NODE_NETWORK_LIMITED, serves recent blocks, refuses deep ones.
            reader, writer, proto, inbox = await _raw_peer(node.bound_port)
            version = next(m for m in inbox if isinstance(m, Version))
            assert version.services & Services.NODE_NETWORK_LIMITED
            assert not version.services & Services.NODE_NETWORK
            tip = chain.tip.hash
            writer.write(proto.send(GetData((InvItem(InvType.WITNESS_BLOCK, tip),))))
            got = None
            while got is None:
                data = await asyncio.wait_for(reader.read(65536), 10)
                assert data
                got = next(
                    (m for m in proto.receive_data(data) if isinstance(m, BlockMessage)), None
                )
            assert got.block.hash == tip
            deep = chain.block_hash_at(chain.height - 400)
            writer.write(proto.send(GetData((InvItem(InvType.WITNESS_BLOCK, deep),))))
            closed = False
            while not closed:
                data = await asyncio.wait_for(reader.read(65536), 10)
                closed = not data
                if data:
                    assert not any(isinstance(m, BlockMessage) for m in proto.receive_data(data))
            writer.close()
            # And it still builds block templates: one is mined, connected, and relayed to btcd.
            from node.mining.assembler import solve
            from node.mining.template import TemplateBuilder

            gbt = TemplateBuilder(chain).build()
            assert gbt.to_gbt()["height"] == chain.height + 1
            block = gbt.to_block(b"\x51", b"pruned")
            assert solve(block.header)
            assert (await node._run_chain(chain.process_block, block)).tip_changed
            assert await _wait_for(lambda: btcd.rpc("getbestblockhash") == block.hash_hex, 30)
        finally:
            await node.stop()

    try:
        asyncio.run(scenario())
    finally:
        chain.close()


def test_transactions_relay_both_ways(tmp_path: Path) -> None:
    from node.mempool import Mempool
    from node.mining.workload import RegtestWorkload
    from node.wallet.keys import WalletKey
    from protocols.bitcoin.address import script_to_address
    from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint

    key = WalletKey.from_seed(b"btcd-relay", 0)
    btcd = Btcd(tmp_path / "btcd", mining_address=script_to_address(key.p2wpkh, "regtest"))
    chain = Chainstate.open(tmp_path / "ours", REGTEST)
    mempool = Mempool(chain)

    def spend(height: int) -> Tx:
        """Spend the coinbase btcd mined to our key at ``height`` (read from our synced chain)."""
        cb = chain.get_block(chain.block_hash_at(height)).txs[0]
        value = cb.outputs[0].value
        assert cb.outputs[0].script_pubkey == key.p2wpkh
        tx = Tx(
            2, [TxIn(outpoint(cb.txid, 0), b"", 0xFFFFFFFD)], [TxOut(value - 20_000, key.p2wpkh)], 0
        )

        class Coin:
            output = cb.outputs[0]

        Coin.key = key
        RegtestWorkload.sign(tx, [Coin])
        return tx

    async def scenario() -> None:
        node = P2PNode(chain, connect=[("127.0.0.1", btcd.p2p_port)], mempool=mempool)
        await node.start()
        try:
            # btcd activates segwit on regtest through BIP9 signalling (windows of 144 blocks),
            # unlike Core where it is active from genesis; witness spends relay only after that.
            btcd.rpc("generate", 500)
            best = btcd.rpc("getbestblockhash")
            assert await _wait_for(lambda: chain.tip.hash_hex == best, 60)
            # Ours -> btcd: accepted into our mempool, announced, fetched by btcd.
            mine = spend(1)
            assert (await node._run_chain(mempool.accept, mine)).accepted
            assert await _wait_for(lambda: mine.txid_hex in btcd.rpc("getrawmempool"), 30)
            # btcd -> ours: sent to btcd's RPC, relayed to our mempool.
            theirs = spend(2)
            btcd.rpc("sendrawtransaction", theirs.serialize().hex())
            assert await _wait_for(lambda: mempool.get(theirs.txid) is not None, 30)
            # A block from btcd confirms both and empties our mempool.
            btcd.rpc("generate", 1)
            best = btcd.rpc("getbestblockhash")
            assert await _wait_for(lambda: chain.tip.hash_hex == best, 30)
            assert await _wait_for(lambda: len(mempool) == 0, 10)
        finally:
            await node.stop()

    try:
        asyncio.run(scenario())
    finally:
        mempool.close()
        chain.close()
        btcd.stop()


def test_automatic_outbound_peers_from_the_address_book(tmp_path: Path) -> None:
    """Without --connect the node dials known addresses itself, up to its outbound limit."""
    first = Btcd(tmp_path / "btcd1")
    second = Btcd(tmp_path / "btcd2", connect=[first.p2p_port])  # both end up with the chain
    chain = Chainstate.open(tmp_path / "ours", REGTEST)
    try:
        first.rpc("generate", 30)
        best = first.rpc("getbestblockhash")
        deadline = time.time() + 30
        while second.rpc("getbestblockhash") != best:
            assert time.time() < deadline, "btcd2 did not sync from btcd1"
            time.sleep(0.1)

        async def scenario() -> None:
            node = P2PNode(chain, max_outbound=1, dns_seeds=())
            for b in (first, second):
                node.addrbook.add("127.0.0.1", b.p2p_port, 1, int(time.time()))
            await node.start()
            try:
                synced = await _wait_for(lambda: chain.tip.hash_hex == best, 60)
                assert synced, "did not sync from a peer found in the address book"
                await asyncio.sleep(OUTBOUND_SETTLE)
                outbound = [s for s in node.peers.values() if not s.conn.inbound]
                assert len(outbound) == 1
            finally:
                await node.stop()

        asyncio.run(scenario())
    finally:
        chain.close()
        first.stop()
        second.stop()


OUTBOUND_SETTLE = 6.0  # more than one outbound-check interval

"""Low-work header spam over a real socket: the header tree does not grow, the spammer is
dropped, and honest chains with enough work (short forks, long presynced ones) still land."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from pathlib import Path

from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from node.mining.workload import RegtestWorkload
from node.net.p2p_node import P2PNode
from protocols.bitcoin.block import BlockHeader
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.networks import REGTEST as NET
from protocols.bitcoin.p2p.messages import (
    BlockMessage,
    GetHeaders,
    Headers,
    Message,
    Verack,
    Version,
)
from protocols.bitcoin.p2p.peer import PeerProtocol
from tests.helpers.headerchain import mine

_BITS = REGTEST.pow_limit_bits


def fork_headers(prev_hash: bytes, prev_time: int, count: int, tag: int) -> list[bytes]:
    out = []
    for i in range(count):
        raw = mine(prev_hash, prev_time + 600 * (i + 1), _BITS, tag=tag * 1_000_003 + i)
        out.append(raw)
        prev_hash = sha256d(raw)
    return out


class RawPeer:
    """A peer on a plain socket speaking our sans-IO protocol; answers getheaders from ``chain``."""

    def __init__(self, chain: list[bytes] | None = None) -> None:
        self.proto = PeerProtocol(NET.magic)
        self.chain = chain or []
        self.getheaders = 0
        self.closed = asyncio.Event()

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(self.proto.send(Version(services=1 | 8, nonce=random.getrandbits(64))))
        while not self.proto.established:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data
            self.proto.receive_data(data)
        self.writer.write(self.proto.send(Verack()))
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while data := await self.reader.read(1 << 20):
                for msg in self.proto.receive_data(data):
                    if isinstance(msg, GetHeaders):
                        self._answer(msg)
        except ConnectionError:
            pass
        self.closed.set()

    def _answer(self, msg: GetHeaders) -> None:
        """Headers after the first locator hash on our chain (its fork point counts)."""
        self.getheaders += 1
        known = {sha256d(r): i + 1 for i, r in enumerate(self.chain)}
        if self.chain:
            known[self.chain[0][4:36]] = 0
        start = next((known[h] for h in msg.locator if h in known), None)
        batch = [] if start is None else self.chain[start : start + 2000]
        self.send(Headers(tuple(BlockHeader.from_bytes(r) for r in batch)))

    def send(self, msg: Message) -> None:
        self.writer.write(self.proto.send(msg))


async def wait_for(cond, timeout: float = 30.0) -> bool:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


def test_low_work_fork_spam_is_not_stored_and_peer_dropped(tmp_path: Path) -> None:
    chain = Chainstate.open(tmp_path / "node", REGTEST)
    w = RegtestWorkload(b"lowwork")
    for _ in range(20):
        assert chain.process_block(w.next_block()).tip_changed
    genesis = chain.tree.genesis
    size_before = len(chain.tree)

    async def scenario() -> None:
        node = P2PNode(chain, listen=("127.0.0.1", 0))
        await node.start()
        try:
            spammer = RawPeer()
            await spammer.connect(node.bound_port)
            sent = 0
            for tag in range(300):  # 19-header forks from genesis: always less work than ours
                raws = fork_headers(genesis.hash, genesis.time, 19, tag=tag)
                spammer.send(Headers(tuple(BlockHeader.from_bytes(r) for r in raws)))
                sent += len(raws)
                if spammer.closed.is_set():
                    break
                await asyncio.sleep(0)
            assert await wait_for(spammer.closed.is_set), "spammer was not dropped"
            assert sent > 4080  # the cap: 2 * 2000 slack + 4 x the 20 blocks needed
            _, reason, banned = node.recent_disconnects[-1]
            assert "low-work headers" in reason and not banned
            assert len(chain.tree) == size_before
            assert chain.tree.fork_entries == 0

            # An honest fork with more work than our tip is still stored and reorged to.
            other = RegtestWorkload(b"lowwork-honest")
            blocks = [other.next_block() for _ in range(22)]
            honest = RawPeer()
            await honest.connect(node.bound_port)
            honest.send(Headers(tuple(b.header for b in blocks)))
            assert await wait_for(lambda: chain.tree.best.hash == blocks[-1].hash)
            for b in blocks:
                honest.send(BlockMessage(b))
            assert await wait_for(lambda: chain.tip.hash == blocks[-1].hash), chain.tip
            assert chain.height == 22
            assert not honest.closed.is_set()
            honest.writer.close()
        finally:
            await node.stop()

    try:
        asyncio.run(scenario())
    finally:
        chain.close()


def test_long_chain_below_minimum_work_is_presynced(tmp_path: Path) -> None:
    """With a minimum chain work of 2,500 regtest blocks: 2,000-header batches are presynced,
    never stored unless the chain gets there; a chain that does is redownloaded and stored;
    a peer that restarts cheap presyncs over and over is dropped."""
    params = dataclasses.replace(REGTEST, minimum_chain_work=2 * 2501)
    chain = Chainstate.open(tmp_path / "node", params)
    genesis = chain.tree.genesis

    async def scenario() -> None:
        node = P2PNode(chain, listen=("127.0.0.1", 0))
        await node.start()
        try:
            # Spam: 2,000-header chains from genesis, each ended with an empty answer.
            spammer = RawPeer()
            await spammer.connect(node.bound_port)
            rounds = 0
            for tag in range(10):
                raws = fork_headers(genesis.hash, genesis.time, 2000, tag=100 + tag)
                spammer.send(Headers(tuple(BlockHeader.from_bytes(r) for r in raws)))
                spammer.send(Headers(()))
                rounds += 1
                if await wait_for(spammer.closed.is_set, 0.5):
                    break
                assert len(chain.tree) == 1
            assert await wait_for(spammer.closed.is_set), "presync spammer was not dropped"
            assert rounds * 2000 > 4000 + 4 * 2500
            assert len(chain.tree) == 1
            assert "low-work headers" in node.recent_disconnects[-1][1]

            # Honest: a 2,600-header chain passes the minimum work; it is presynced,
            # redownloaded (the node asks again from genesis) and then stored.
            good = fork_headers(genesis.hash, genesis.time, 2600, tag=999)
            peer = RawPeer(good)
            await peer.connect(node.bound_port)
            # An unrelated announcement while the sync runs is screened on its own and
            # neither breaks the sync nor gets the peer dropped.
            [stray] = fork_headers(genesis.hash, genesis.time, 1, tag=555)
            peer.send(Headers((BlockHeader.from_bytes(stray),)))
            assert await wait_for(lambda: chain.tree.best.height == 2600, 60)
            assert chain.tree.best.hash == sha256d(good[-1])
            assert len(chain.tree) == 2601 and sha256d(stray) not in chain.tree
            assert peer.getheaders >= 3  # initial + presync continuation + redownload
            assert not peer.closed.is_set()
            peer.writer.close()
        finally:
            await node.stop()

    try:
        asyncio.run(scenario())
    finally:
        chain.close()


def test_fork_cannot_borrow_work_from_a_bogus_header(tmp_path: Path) -> None:
    """A cheap fork ending in one hard-target header without its proof of work: nothing is
    stored (not even the valid prefix) and the peer is dropped as misbehaving."""
    chain = Chainstate.open(tmp_path / "node", REGTEST)
    w = RegtestWorkload(b"lowwork-bogus")
    for _ in range(20):
        assert chain.process_block(w.next_block()).tip_changed
    genesis = chain.tree.genesis
    size_before = len(chain.tree)
    raws = fork_headers(genesis.hash, genesis.time, 10, tag=77)
    hard = BlockHeader(0x20000000, sha256d(raws[-1]), bytes(32), genesis.time + 7000, 0x1D00FFFF, 0)
    raws.append(hard.serialize())  # claims 2^32 work; its hash misses that target

    async def scenario() -> None:
        node = P2PNode(chain, listen=("127.0.0.1", 0))
        await node.start()
        try:
            peer = RawPeer()
            await peer.connect(node.bound_port)
            peer.send(Headers(tuple(BlockHeader.from_bytes(r) for r in raws)))
            assert await wait_for(peer.closed.is_set), "peer was not dropped"
            _, reason, banned = node.recent_disconnects[-1]
            assert reason == "invalid header: high-hash" and banned
            assert len(chain.tree) == size_before
        finally:
            await node.stop()

    try:
        asyncio.run(scenario())
    finally:
        chain.close()

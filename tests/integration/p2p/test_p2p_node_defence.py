"""Bad input from a peer: that peer is dropped (and banned where Core would), our state unchanged,
and the node keeps serving everyone else."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from node.mining.workload import RegtestWorkload
from node.net.p2p_node import P2PNode
from protocols.bitcoin.networks import REGTEST as NET
from protocols.bitcoin.p2p.framing import encode_frame
from protocols.bitcoin.p2p.messages import BlockMessage, Ping, Pong, Verack, Version
from protocols.bitcoin.p2p.peer import PeerProtocol


async def handshake(port: int):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    proto = PeerProtocol(NET.magic)
    writer.write(proto.send(Version(nonce=random.getrandbits(64))))
    while not proto.established:
        data = await asyncio.wait_for(reader.read(65536), 10)
        assert data
        proto.receive_data(data)
    writer.write(proto.send(Verack()))
    return reader, writer, proto


async def closed_by_node(reader: asyncio.StreamReader) -> bool:
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), 10)
            if not data:
                return True
    except ConnectionError:
        return True  # a reset is a close too
    except TimeoutError:
        return False


async def still_served(port: int) -> bool:
    reader, writer, proto = await handshake(port)
    writer.write(proto.send(Ping(77)))
    while True:
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            return False
        if any(isinstance(m, Pong) and m.nonce == 77 for m in proto.receive_data(data)):
            writer.close()
            return True


def _bad_merkle_block(w: RegtestWorkload) -> bytes:
    from node.mining.assembler import solve

    block = w.next_block(adopt=False)
    block.header.merkle_root = bytes(32)
    solve(block.header)
    return block.serialize()


CASES = {
    "bad-checksum": (lambda w: encode_frame(NET.magic, b"ping", b"\x00" * 8)[:-1] + b"\x01", False),
    "oversized": (
        lambda w: (
            NET.magic + b"block".ljust(12, b"\x00") + (8_000_000).to_bytes(4, "little") + b"\0" * 4
        ),
        True,
    ),
    "wrong-magic": (lambda w: encode_frame(b"\xf9\xbe\xb4\xd9", b"ping", b"\x00" * 8), True),
    "malformed-payload": (lambda w: encode_frame(NET.magic, b"headers", b"\xfd\xff\xff"), True),
    "invalid-block": (
        lambda w: encode_frame(NET.magic, b"block", _bad_merkle_block(w)),
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_peer_is_dropped_and_state_unchanged(case: str, tmp_path: Path) -> None:
    make, should_ban = CASES[case]
    chain = Chainstate.open(tmp_path / "node", REGTEST)
    w = RegtestWorkload(b"defence")
    for _ in range(3):
        assert chain.process_block(w.next_block()).tip_changed
    before = (chain.tip, chain.utxo_stats())

    async def scenario() -> None:
        node = P2PNode(chain, listen=("127.0.0.1", 0))
        await node.start()
        try:
            reader, writer, _ = await handshake(node.bound_port)
            writer.write(make(w))
            assert await closed_by_node(reader), "node kept the misbehaving peer"
            await asyncio.sleep(0.2)
            _, reason, banned = node.recent_disconnects[-1]
            assert banned == should_ban, reason
            assert await still_served(node.bound_port)
        finally:
            await node.stop()

    try:
        asyncio.run(scenario())
        assert (chain.tip, chain.utxo_stats()) == before
    finally:
        chain.close()


def test_valid_block_from_peer_is_connected(tmp_path: Path) -> None:
    chain = Chainstate.open(tmp_path / "node", REGTEST)
    w = RegtestWorkload(b"defence-ok")

    async def scenario() -> None:
        node = P2PNode(chain, listen=("127.0.0.1", 0))
        await node.start()
        try:
            _, writer, proto = await handshake(node.bound_port)
            block = w.next_block()
            writer.write(proto.send(BlockMessage(block)))
            for _ in range(100):
                if chain.tip.hash == block.hash:
                    break
                await asyncio.sleep(0.05)
            assert chain.tip.hash == block.hash
        finally:
            await node.stop()

    try:
        asyncio.run(scenario())
    finally:
        chain.close()

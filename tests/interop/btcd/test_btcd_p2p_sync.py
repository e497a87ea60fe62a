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

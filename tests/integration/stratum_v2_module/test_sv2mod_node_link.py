"""NodeLink against the node's real template provider (in-process NodeService, regtest).

Work arrives as WorkTemplates paying our script; a block solved on it goes back as a
SubmitSolution and becomes the node's tip; a wrong pinned authority key never links.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from appliance.stratum_v2.node_link import NodeLink
from node.chain.params import REGTEST
from node.service import NodeConfig, NodeService
from protocols.bitcoin.block import BlockHeader
from protocols.sv2 import secp

PAYOUT = b"\x00\x14" + b"\x33" * 20


def solve(work, extranonce: bytes):
    header = BlockHeader(
        work.version, work.prev_hash, work.merkle_root(extranonce), work.min_ntime, work.nbits, 0
    )
    for nonce in range(1 << 20):
        header.nonce = nonce
        if int.from_bytes(header.hash, "little") <= work.network_target:
            return work.block(extranonce, header)
    raise AssertionError("no nonce at a regtest target")


async def wait_for(predicate, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def test_sv2mod_node_link_mines_a_block(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = NodeConfig(params=REGTEST, datadir=tmp_path, rpc_enabled=False, sv2_tp_port=0)
        service = NodeService(config)
        await service.start()
        tp = service.template_provider
        link = NodeLink("127.0.0.1", tp.port, PAYOUT, authority=tp.keys.authority_public)
        seen = []
        link.subscribe(seen.append)
        task = asyncio.create_task(link.run())
        try:
            await wait_for(lambda: link.current() is not None)
            work = link.current()
            assert work.prev_hash == service.chain.tip.hash
            coinbase_bytes = work.coinbase(b"\x07" * work.extranonce_size)
            assert PAYOUT in coinbase_bytes
            block = solve(work, b"\x07" * work.extranonce_size)
            assert await asyncio.to_thread(link.submit_block, block) is None
            await wait_for(lambda: service.chain.height == 1)
            assert service.chain.tip.hash == block.header.hash
            assert (
                service.chain.get_block(block.header.hash).txs[0].outputs[0].script_pubkey == PAYOUT
            )
            await wait_for(lambda: link.current().prev_hash == block.header.hash)
            assert len(seen) >= 2 and link.status()["solutions_sent"] == 1
        finally:
            await link.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await service.stop()

    asyncio.run(scenario())


def test_sv2mod_node_link_refuses_wrong_authority(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = NodeConfig(params=REGTEST, datadir=tmp_path, rpc_enabled=False, sv2_tp_port=0)
        service = NodeService(config)
        await service.start()
        tp = service.template_provider
        wrong = secp.xonly_from_secret(os.urandom(31) + b"\x01")
        link = NodeLink("127.0.0.1", tp.port, PAYOUT, authority=wrong, retry=0.1)
        task = asyncio.create_task(link.run())
        try:
            await asyncio.sleep(1.0)
            assert link.current() is None and not link.connected.is_set()
        finally:
            await link.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await service.stop()

    asyncio.run(scenario())

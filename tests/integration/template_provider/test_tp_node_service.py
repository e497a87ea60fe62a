"""The template provider inside NodeService: on when configured, keys in the datadir.

A fresh regtest node serves work at height 1; a block solved from it via SubmitSolution
becomes the node's tip (and is what getblockcount/RPC would report). Restarting the node
keeps the authority key, so pools keep working without reconfiguration.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from node.chain.params import REGTEST
from node.mining.tp_keys import KEY_FILE
from node.service import NodeConfig, NodeService
from tests.unit.template_provider.tp_tools import TdClient, client_coinbase, solve_template


def _config(datadir: Path, tp_port: int | None = 0) -> NodeConfig:
    return NodeConfig(params=REGTEST, datadir=datadir, rpc_enabled=False, sv2_tp_port=tp_port)


def test_tp_node_service_serves_and_accepts_blocks_across_restart(tmp_path: Path) -> None:
    async def run_once(expect_height: int) -> str:
        service = NodeService(_config(tmp_path))
        await service.start()
        try:
            tp = service.template_provider
            assert tp is not None
            client = await TdClient.connect(tp.port, tp.keys.authority_public)
            tpl, prev = await client.work()
            assert service.chain.height == expect_height
            client.send(solve_template(tpl, prev, client_coinbase(tpl)))
            _, prev2 = await client.work()  # the node moved on to our block
            assert service.chain.height == expect_height + 1
            assert prev2.prev_hash == service.chain.tip.hash
            await client.close()
            return tp.keys.authority_public_text
        finally:
            await service.stop()

    first = asyncio.run(run_once(0))
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert asyncio.run(run_once(1)) == first


def test_tp_node_service_off_by_default_in_the_library(tmp_path: Path) -> None:
    async def scenario() -> None:
        service = NodeService(_config(tmp_path, tp_port=None))
        await service.start()
        try:
            assert service.template_provider is None
            assert not (tmp_path / KEY_FILE).exists()
        finally:
            await service.stop()

    asyncio.run(scenario())


def test_tp_busy_default_port_is_not_fatal_but_explicit_port_is(tmp_path: Path) -> None:
    async def scenario() -> None:
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            config = _config(tmp_path / "a", tp_port=port)
            config.sv2_tp_required = False  # the CLI's default port
            service = NodeService(config)
            await service.start()
            try:
                assert service.template_provider is None and service.chain is not None
            finally:
                await service.stop()
            service = NodeService(_config(tmp_path / "b", tp_port=port))
            with pytest.raises(OSError, match="--sv2-tp-port"):
                await service.start()
            await service.stop()

    asyncio.run(scenario())

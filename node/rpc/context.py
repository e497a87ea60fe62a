"""What RPC methods can reach: the chainstate and, when running, P2P and the mempool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node.chain.chainstate import Chainstate
from node.rpc.errors import RpcCode, RpcError


@dataclass(slots=True)
class NodeContext:
    chain: Chainstate
    p2p: Any = None  # node.net.p2p_node.P2PNode when networking runs
    mempool: Any = None  # node.mempool.Mempool when present
    loop: asyncio.AbstractEventLoop | None = None
    request_stop: Callable[[], None] | None = None
    started: float = field(default_factory=time.time)
    dispatcher: Any = None  # node.rpc.dispatch.Dispatcher, for help
    templates: Any = None  # node.mining.template.TemplateBuilder
    longpoll: Any = None  # node.rpc.template_rpc.TipWaiter

    @property
    def network(self) -> str:
        return self.chain.params.network

    def need_mempool(self) -> Any:
        if self.mempool is None:
            raise RpcError(RpcCode.MISC_ERROR, "Mempool disabled or instance not found")
        return self.mempool

    def need_p2p(self) -> Any:
        if self.p2p is None or self.loop is None:
            raise RpcError(RpcCode.CLIENT_NOT_CONNECTED, "P2P networking is disabled")
        return self.p2p

    def on_loop(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        """Run ``fn`` on the P2P event loop thread and wait for its result."""
        loop = self.need_p2p() and self.loop
        assert loop is not None

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

"""Solo upstream: our own node's templates paying the user's address; blocks go to the node."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.source import TemplateSource
from appliance.stratum_v2.upstream.base import UpstreamShare, UpstreamState, UpstreamStats, WorkSink
from appliance.stratum_v2.upstream.errors import UpstreamIncompatible
from protocols.bitcoin.block import Block

__all__ = ["SoloUpstream"]


class SoloUpstream:
    """Wraps a node `TemplateSource` (e.g. `NodeTemplateSource` built with the payout script)."""

    def __init__(self, source: TemplateSource, space: int, *, name: str = "solo") -> None:
        if source.extranonce_size != space:
            raise UpstreamIncompatible(
                f"node source has {source.extranonce_size} extranonce bytes, need {space}"
            )
        self.source = source
        self.name = name
        self.stats = UpstreamStats()
        self.state = UpstreamState.IDLE
        self._sink: WorkSink | None = None
        self._closed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def set_work_sink(self, sink: WorkSink | None) -> None:
        self._sink = sink
        work = self.source.current() if sink is not None else None
        if sink is not None and work is not None:
            sink(work)

    def _deliver(self, work: WorkTemplate) -> None:
        self.stats.works += 1
        self.state = UpstreamState.MINING
        if self._sink is not None:
            self._sink(work)

    def _on_work_threadsafe(self, work: WorkTemplate) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, work)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closed.clear()
        self.state = UpstreamState.CONNECTING
        unsubscribe: Callable[[], None] = self.source.subscribe(self._on_work_threadsafe)
        try:
            work = await asyncio.to_thread(self.source.current)
            if work is not None:
                self._deliver(work)
            await self._closed.wait()
        finally:
            unsubscribe()

    async def close(self) -> None:
        self.state = UpstreamState.CLOSED
        self._closed.set()

    def submit_share(self, share: UpstreamShare) -> bool:
        return False  # solo: only blocks matter, and they go through submit_block

    def submit_block(self, block: Block) -> str | None:
        return self.source.submit_block(block)

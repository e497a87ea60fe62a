"""A scripted upstream implementing OUR `Upstream` interface (not a fake of any peer)."""

from __future__ import annotations

import asyncio

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.upstream.base import UpstreamShare, UpstreamState, UpstreamStats
from appliance.stratum_v2.upstream.errors import UpstreamError

SPACE = 8


def work(template_id: int, prev: int = 1) -> WorkTemplate:
    return WorkTemplate(
        template_id=template_id,
        prev_hash=prev.to_bytes(32, "little"),
        nbits=0x207FFFFF,
        version=0x20000000,
        min_ntime=1_700_000_000,
        coinbase_prefix=b"\x01" * 42,
        coinbase_suffix=b"\x02" * 30,
        extranonce_size=SPACE,
        merkle_path=(),
    )


class ScriptedUpstream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = UpstreamStats()
        self.state = UpstreamState.IDLE
        self.sink = None
        self.runs = 0
        self.shares: list[UpstreamShare] = []
        self.blocks: list[object] = []
        self._stop: asyncio.Event | None = None
        self._crash: asyncio.Event | None = None

    def set_work_sink(self, sink) -> None:
        self.sink = sink

    async def run(self) -> None:
        self.runs += 1
        self.state = UpstreamState.CONNECTING
        self._stop, self._crash = asyncio.Event(), asyncio.Event()
        stop = asyncio.create_task(self._stop.wait())
        crash = asyncio.create_task(self._crash.wait())
        try:
            await asyncio.wait({stop, crash}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            crash.cancel()
        if self._crash.is_set():
            self.state = UpstreamState.FAILED
            raise UpstreamError(f"{self.name}: connection lost")

    def deliver(self, w: WorkTemplate) -> None:
        self.state = UpstreamState.MINING
        self.stats.works += 1
        assert self.sink is not None, f"{self.name} has no sink: not running"
        self.sink(w)

    def crash(self) -> None:
        assert self._crash is not None
        self._crash.set()

    def submit_share(self, share: UpstreamShare) -> bool:
        self.shares.append(share)
        return True

    def submit_block(self, block) -> str | None:
        self.blocks.append(block)
        return None

    async def close(self) -> None:
        self.state = UpstreamState.CLOSED
        if self._stop is not None:
            self._stop.set()

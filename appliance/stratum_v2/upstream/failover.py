"""Ordered failover between upstreams, and the `TemplateSource` the downstream mines on.

Slots are tried in order. The active one must keep earning its place: work within
`connect_timeout` of starting, new work at least every `no_job_timeout`, and a rejected-share
ratio under `max_reject_ratio` (once `min_shares` results are in). A failed slot rests for
`retry_after`; meanwhile every better slot that has rested is probed (connected as a standby)
and the first one to deliver work takes over, so the primary wins back as soon as it is
healthy. The reject ratio covers the last `reject_window` seconds. Time is injected: `step(now)` makes every decision, `run()` only calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.source import WorkCallback
from appliance.stratum_v2.upstream.base import Upstream, UpstreamShare, UpstreamState
from protocols.bitcoin.block import Block

__all__ = ["FailoverSource", "HealthPolicy"]

log = logging.getLogger("blvm.stratum_v2.upstream.failover")

MAX_TEMPLATES = 256


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    connect_timeout: float = 15.0
    no_job_timeout: float = 300.0
    max_reject_ratio: float = 0.5
    min_shares: int = 10
    reject_window: float = 600.0  # seconds of share results the ratio looks at
    retry_after: float = 30.0
    tick: float = 1.0


@dataclass(slots=True)
class _Slot:
    index: int
    upstream: Upstream
    task: asyncio.Task[None] | None = None
    started_at: float = 0.0
    last_work_at: float | None = None
    work: WorkTemplate | None = None
    resting_until: float = 0.0
    # (time, accepted, rejected) samples covering the reject window
    samples: deque[tuple[float, int, int]] = field(default_factory=deque)
    failures: int = 0
    last_reason: str | None = None

    @property
    def running(self) -> bool:
        return self.task is not None


@dataclass(slots=True)
class FailoverCounters:
    switches: int = 0
    history: list[tuple[float, str, str]] = field(default_factory=list)  # (now, name, reason)


class FailoverSource:
    """Runs upstreams in priority order; is the downstream server's template source."""

    def __init__(
        self,
        upstreams: list[Upstream],
        space: int,
        policy: HealthPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not upstreams:
            raise ValueError("at least one upstream is needed")
        self.slots = [_Slot(i, u) for i, u in enumerate(upstreams)]
        self.space = space
        self.policy = policy or HealthPolicy()
        self.clock = clock
        self.active: _Slot | None = None
        self.counters = FailoverCounters()
        self._current: WorkTemplate | None = None
        self._callbacks: list[WorkCallback] = []
        self._lock = threading.RLock()
        self._templates: OrderedDict[int, tuple[_Slot, int]] = OrderedDict()
        self._next_id = 1
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()

    # TemplateSource -----------------------------------------------------------------------

    @property
    def extranonce_size(self) -> int:
        return self.space

    def current(self) -> WorkTemplate | None:
        return self._current

    def subscribe(self, callback: WorkCallback) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def refresh(self, force: bool = False) -> None:
        if force and self._current is not None:
            self._notify(self._current)

    def submit_block(self, block: Block) -> str | None:
        active = self.active
        if active is None:
            return "no-active-upstream"
        return active.upstream.submit_block(block)

    # shares from the downstream server ----------------------------------------------------

    def share_sink(self, share: UpstreamShare) -> None:
        """`Sv2Server.share_sink`: send an accepted downstream share to its upstream."""
        entry = self._templates.get(share.template_id)
        if entry is None:
            return
        slot, upstream_id = entry
        if slot is not self.active:
            return  # work of an upstream we left: its shares are stale there
        slot.upstream.submit_share(dataclasses.replace(share, template_id=upstream_id))

    # decisions ----------------------------------------------------------------------------

    def step(self, now: float) -> None:
        """Reap ended upstreams, check the active one's health, probe, switch."""
        if self._closed:
            return
        policy = self.policy
        for slot in self.slots:
            if slot.task is not None and slot.task.done():
                exc = None if slot.task.cancelled() else slot.task.exception()
                self._fail(slot, now, f"ended: {exc}" if exc else "ended")
        active = self.active
        if active is not None:
            reason = self._unhealthy(active, now)
            if reason is not None:
                self._fail(active, now, reason)
        # Standbys that never delivered work within the connect timeout fail too.
        for slot in self.slots:
            waiting = slot.running and slot is not self.active and slot.last_work_at is None
            if waiting and now - slot.started_at > policy.connect_timeout:
                self._fail(slot, now, "no work within the connect timeout")
        # A better slot with work takes over.
        limit = self.active.index if self.active is not None else len(self.slots)
        for slot in self.slots[:limit]:
            if slot.running and slot.work is not None:
                self._activate(slot, now)
                break
        # Probe every rested slot better than the active one; with none active, only the
        # first rested slot (going down the list one at a time).
        limit = self.active.index if self.active is not None else len(self.slots)
        connecting = any(s.running and s.work is None for s in self.slots[:limit])
        for slot in self.slots[:limit]:
            if slot.running or now < slot.resting_until:
                continue
            if self.active is None and connecting:
                break
            self._start(slot, now)
            connecting = True
            if self.active is None:
                break

    def _unhealthy(self, slot: _Slot, now: float) -> str | None:
        policy = self.policy
        if slot.last_work_at is None:
            if now - slot.started_at > policy.connect_timeout:
                return "no work within the connect timeout"
        elif now - slot.last_work_at > policy.no_job_timeout:
            return f"no new job for {now - slot.last_work_at:.0f} s"
        stats = slot.upstream.stats
        samples = slot.samples
        samples.append((now, stats.accepted, stats.rejected))
        # keep one sample at or before the window's start as the base
        while len(samples) > 1 and samples[1][0] <= now - policy.reject_window:
            samples.popleft()
        _, base_accepted, base_rejected = samples[0]
        accepted = stats.accepted - base_accepted
        rejected = stats.rejected - base_rejected
        total = accepted + rejected
        if total >= policy.min_shares and rejected / total > policy.max_reject_ratio:
            return f"{rejected}/{total} shares rejected"
        return None

    def _start(self, slot: _Slot, now: float) -> None:
        upstream = slot.upstream
        slot.started_at = now
        slot.last_work_at = None
        slot.work = None
        slot.samples = deque([(now, upstream.stats.accepted, upstream.stats.rejected)])
        upstream.set_work_sink(lambda work, s=slot: self._on_work(s, work))
        slot.task = asyncio.get_running_loop().create_task(upstream.run())
        log.info("starting upstream %s", upstream.name)

    def _fail(self, slot: _Slot, now: float, reason: str) -> None:
        slot.failures += 1
        slot.last_reason = reason
        slot.resting_until = now + self.policy.retry_after
        self.counters.history.append((now, slot.upstream.name, reason))
        log.warning("upstream %s failed: %s", slot.upstream.name, reason)
        self._stop(slot)
        if self.active is slot:
            self.active = None

    def _stop(self, slot: _Slot) -> None:
        slot.upstream.set_work_sink(None)
        task, slot.task = slot.task, None
        slot.work = None
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            task.add_done_callback(_consume)
        with contextlib.suppress(RuntimeError):  # no loop: close() will close it
            closing = asyncio.get_running_loop().create_task(slot.upstream.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    def _activate(self, slot: _Slot, now: float) -> None:
        old = self.active
        self.active = slot
        self.counters.switches += 1
        self.counters.history.append((now, slot.upstream.name, "active"))
        log.info(
            "upstream %s active%s",
            slot.upstream.name,
            f" (was {old.upstream.name})" if old is not None else "",
        )
        if old is not None:
            self._stop(old)
            old.resting_until = now  # healthy, only outranked: may be probed again at once
        if slot.work is not None:
            self._publish(slot, slot.work)

    # work ---------------------------------------------------------------------------------

    def _on_work(self, slot: _Slot, work: WorkTemplate) -> None:
        slot.last_work_at = self.clock()
        slot.work = work
        if slot is self.active:
            self._publish(slot, work)

    def _publish(self, slot: _Slot, work: WorkTemplate) -> None:
        with self._lock:
            ours = self._next_id
            self._next_id += 1
            self._templates[ours] = (slot, work.template_id)
            while len(self._templates) > MAX_TEMPLATES:
                self._templates.popitem(last=False)
            stamped = dataclasses.replace(work, template_id=ours)
            self._current = stamped
            self._notify(stamped)

    def _notify(self, work: WorkTemplate) -> None:
        with self._lock:
            for callback in list(self._callbacks):
                callback(work)

    # lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive `step()` every `policy.tick` seconds until `close()`."""
        while not self._closed:
            self.step(self.clock())
            await asyncio.sleep(self.policy.tick)

    async def close(self) -> None:
        self._closed = True
        for slot in self.slots:
            self._stop(slot)
            await slot.upstream.close()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self.active = None

    def status(self) -> dict[str, Any]:
        return {
            "active": self.active.upstream.name if self.active is not None else None,
            "switches": self.counters.switches,
            "upstreams": [
                {
                    "name": s.upstream.name,
                    "state": s.upstream.state.value
                    if isinstance(s.upstream.state, UpstreamState)
                    else str(s.upstream.state),
                    "running": s.running,
                    "failures": s.failures,
                    "last_reason": s.last_reason,
                    **s.upstream.stats.to_dict(),
                }
                for s in self.slots
            ],
        }


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an ended upstream's error is logged by _fail

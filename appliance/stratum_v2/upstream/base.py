"""The one interface every upstream implements, and the pieces they share.

Extranonce mapping: the downstream server mines on a fixed space of `space` bytes (4 per
channel + the miner's part). A pool gives us `pool_size` bytes after its own prefix; when it
gives more than we need, the extra leading bytes are fixed zeros folded into the coinbase
prefix, so the downstream space never changes when the failover switches pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from appliance.stratum_v2.jobs import CHANNEL_PREFIX_SIZE, SOLO_EXTRANONCE_SPACE, WorkTemplate
from appliance.stratum_v2.upstream.errors import UpstreamError, UpstreamIncompatible
from protocols.bitcoin.block import Block

__all__ = [
    "PoolConnection",
    "Upstream",
    "UpstreamShare",
    "UpstreamState",
    "UpstreamStats",
    "WorkSink",
    "extranonce_padding",
    "extranonce_shortfall",
]

WorkSink = Callable[[WorkTemplate], None]


class UpstreamState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    MINING = "mining"  # has delivered work
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class UpstreamShare:
    """An accepted downstream share, in the downstream's terms (full `space` extranonce)."""

    template_id: int
    extranonce: bytes
    version: int
    ntime: int
    nonce: int
    hash_value: int


@dataclass(slots=True)
class UpstreamStats:
    submitted: int = 0
    accepted: int = 0
    rejected: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    works: int = 0
    last_error: str | None = None

    def reject(self, code: str) -> None:
        self.rejected += 1
        self.rejects[code] = self.rejects.get(code, 0) + 1

    def to_dict(self) -> dict[str, object]:
        return {
            "submitted": self.submitted,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejects": dict(self.rejects),
            "works": self.works,
            "last_error": self.last_error,
        }


class Upstream(Protocol):
    """A source of work that takes shares back. Runs on the module's event loop."""

    name: str
    stats: UpstreamStats
    state: UpstreamState

    def set_work_sink(self, sink: WorkSink | None) -> None:
        """Where new work goes (`space`-byte extranonce); None while the upstream is a standby."""
        ...

    async def run(self) -> None:
        """Connect and serve until `close()`; raises `UpstreamError` when the link fails."""
        ...

    def submit_share(self, share: UpstreamShare) -> bool:
        """Forward one share; False when it is not worth sending (below the pool's target,
        or its job is unknown)."""
        ...

    def submit_block(self, block: Block) -> str | None:
        """A full block found on this upstream's work (solo); pools get blocks as shares."""
        ...

    async def close(self) -> None: ...


def extranonce_shortfall(space: int, offered: int | None = None) -> str:
    """Why a pool cannot serve us, and what to do: its extranonce space is below our `space`.

    `offered` is the pool's size when it told us; None when it refused the channel instead
    (min-extranonce-size-too-large).
    """
    if offered is None:
        has = f"fewer than {space} extranonce bytes per channel (min-extranonce-size-too-large)"
    else:
        has = f"{offered} extranonce bytes per channel"
    chained = SOLO_EXTRANONCE_SPACE - CHANNEL_PREFIX_SIZE
    return (
        f"pool offers {has}, this module needs {space}: use a pool that offers at least "
        f"{space} (another appliance's Stratum module offers {chained} when it mines solo, "
        "with no pools of its own configured)"
    )


def extranonce_padding(pool_size: int, space: int) -> bytes:
    """Zero bytes that fill a pool's extranonce space down to ours (raises if it is smaller)."""
    if pool_size < space:
        raise UpstreamIncompatible(extranonce_shortfall(space, pool_size))
    return bytes(pool_size - space)


class PoolConnection:
    """The connection lifecycle both pool upstreams (SV1, SV2) share.

    Subclasses set `_log` and `_protocol_errors`, forget per-connection state in `_reset()`
    and speak their protocol in `_serve()`; this class turns every way a link ends into
    `state`, `stats.last_error` and an `UpstreamError`, and hands work downstream.
    """

    MAX_TEMPLATES: ClassVar[int] = 64  # work handed downstream, remembered to map shares back
    _log: ClassVar[logging.Logger]
    _protocol_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(self, space: int, name: str) -> None:
        self.space = space
        self.name = name
        self.stats = UpstreamStats()
        self.state = UpstreamState.IDLE
        self._sink: WorkSink | None = None
        self._writer: asyncio.StreamWriter | None = None
        # Never reset: ids of an earlier connection must not name this one's jobs.
        self._next_template_id = 1
        self._templates: OrderedDict[int, Any] = OrderedDict()
        self.work: WorkTemplate | None = None

    def _reset(self) -> None:
        """Forget everything of the previous connection (run() is called again on failover)."""
        self._templates = OrderedDict()
        self.work = None

    async def _serve(self) -> None:
        raise NotImplementedError

    def set_work_sink(self, sink: WorkSink | None) -> None:
        # No replay of `self.work`: it may be from a connection that has since failed.
        self._sink = sink

    async def run(self) -> None:
        self._reset()
        self.state = UpstreamState.CONNECTING
        try:
            await self._serve()
        except UpstreamError as exc:
            self._fail(str(exc))
            raise
        except (OSError, TimeoutError, *self._protocol_errors) as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
            raise UpstreamError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        finally:
            if self._writer is not None:
                self._writer.close()
            self._writer = None
        if self.state is not UpstreamState.CLOSED:
            self._fail("connection closed by the pool")
            raise UpstreamError(f"{self.name}: connection closed by the pool")

    async def close(self) -> None:
        self.state = UpstreamState.CLOSED
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    def submit_block(self, block: Block) -> str | None:
        # Work from a pool carries no transactions: blocks reach the pool as shares.
        return "pool-work: block goes upstream as a share"

    def _fail(self, reason: str) -> None:
        if self.state is not UpstreamState.CLOSED:
            self.state = UpstreamState.FAILED
        self.stats.last_error = reason
        self._log.warning("%s: %s", self.name, reason)

    def _take_template_id(self) -> int:
        template_id = self._next_template_id
        self._next_template_id += 1
        return template_id

    def _deliver(self, work: WorkTemplate, sent: object) -> None:
        """Remember what `work` was made of upstream (bounded), then hand it downstream."""
        self._templates[work.template_id] = sent
        while len(self._templates) > self.MAX_TEMPLATES:
            self._templates.popitem(last=False)
        self.work = work
        self.stats.works += 1
        self.state = UpstreamState.MINING
        if self._sink is not None:
            self._sink(work)

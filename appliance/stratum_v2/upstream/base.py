"""The one interface every upstream implements, and the pieces they share.

Extranonce mapping: the downstream server mines on a fixed space of `space` bytes (4 per
channel + the miner's part). A pool gives us `pool_size` bytes after its own prefix; when it
gives more than we need, the extra leading bytes are fixed zeros folded into the coinbase
prefix, so the downstream space never changes when the failover switches pools.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.upstream.errors import UpstreamIncompatible
from protocols.bitcoin.block import Block

__all__ = [
    "Upstream",
    "UpstreamShare",
    "UpstreamState",
    "UpstreamStats",
    "WorkSink",
    "extranonce_padding",
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


def extranonce_padding(pool_size: int, space: int) -> bytes:
    """Zero bytes that fill a pool's extranonce space down to ours (raises if it is smaller)."""
    if pool_size < space:
        raise UpstreamIncompatible(
            f"pool offers {pool_size} extranonce bytes, the downstream needs {space}"
        )
    return bytes(pool_size - space)

"""Mining job tokens shared by our JDS and our SV2 server (the pool embeds its JDS).

AllocateMiningJobToken hands out a token bound to the JD connection that asked; a successful
DeclareMiningJob spends it and returns a new token naming the declared job, which the JD
client then puts in SetCustomMiningJob on its mining connection. Tokens are 8 random bytes,
so after a restart (nothing here is persisted) an old token is simply unknown, never
mistaken for a new one. Everything is bounded: oldest entries are dropped first.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from appliance.stratum_v2.jd_jobs import DeclaredJob
from protocols.bitcoin.block import Block

__all__ = ["BlockSink", "JobTokenRegistry"]

TOKEN_SIZE = 8
#: Submits a block to the node; returns None when accepted, else the reason.
BlockSink = Callable[[Block], Awaitable[str | None]]


class JobTokenRegistry:
    """Allocated tokens (per JD connection) and declared jobs (by their new token)."""

    def __init__(
        self,
        *,
        max_allocated: int = 4096,
        max_declared: int = 256,
        allocated_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.max_allocated = max_allocated
        self.max_declared = max_declared
        self.allocated_ttl = allocated_ttl
        self.clock = clock
        self.rng = rng
        self._allocated: OrderedDict[bytes, tuple[int, float]] = OrderedDict()
        self._declared: OrderedDict[bytes, DeclaredJob] = OrderedDict()
        #: Set by the JDS: where blocks found on declared jobs go (our node's submitblock).
        self.block_sink: BlockSink | None = None

    def _new_token(self) -> bytes:
        while True:
            token = self.rng(TOKEN_SIZE)
            if token not in self._allocated and token not in self._declared:
                return token

    def _expire(self) -> None:
        limit = self.clock() - self.allocated_ttl
        while self._allocated:
            token, (_, when) = next(iter(self._allocated.items()))
            if when >= limit and len(self._allocated) <= self.max_allocated:
                break
            del self._allocated[token]

    def allocate(self, owner: int) -> bytes:
        self._expire()
        token = self._new_token()
        self._allocated[token] = (owner, self.clock())
        self._expire()
        return token

    def is_allocated(self, token: bytes, owner: int) -> bool:
        self._expire()
        entry = self._allocated.get(bytes(token))
        return entry is not None and entry[0] == owner

    def release(self, token: bytes) -> None:
        self._allocated.pop(bytes(token), None)

    def activate(self, token: bytes, owner: int, job: DeclaredJob) -> bytes | None:
        """Spend an allocated token on `job`; returns the job's token (None: not ours)."""
        if not self.is_allocated(token, owner):
            return None
        del self._allocated[bytes(token)]
        new = self._new_token()
        self._declared[new] = job
        while len(self._declared) > self.max_declared:
            self._declared.popitem(last=False)
        return new

    def declared(self, token: bytes) -> DeclaredJob | None:
        return self._declared.get(bytes(token))

    def jobs_of(self, owner: int) -> list[DeclaredJob]:
        """The owner's declared jobs, newest first (PushSolution names no job)."""
        return [j for j in reversed(self._declared.values()) if j.owner == owner]

    def declared_jobs(self) -> list[DeclaredJob]:
        """Every declared job still held, newest first (status and tests)."""
        return list(reversed(self._declared.values()))

    def forget_owner(self, owner: int) -> None:
        """A JD connection closed: its unspent tokens die; declared jobs stay minable."""
        for token in [t for t, (o, _) in self._allocated.items() if o == owner]:
            del self._allocated[token]

    def stats(self) -> dict[str, int]:
        return {"allocated": len(self._allocated), "declared": len(self._declared)}

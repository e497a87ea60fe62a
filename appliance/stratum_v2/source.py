"""Where work comes from. One interface, so an upstream pool can feed jobs later.

`NodeTemplateSource` wraps the in-process node: a `TemplateBuilder` over the chainstate (and
mempool), rebuilt on every tip change and on `refresh()` (mempool changes), and solved blocks
go back through `Chainstate.process_block`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from appliance.stratum_v2.jobs import (
    DEFAULT_EXTRANONCE_SPACE,
    WorkTemplate,
    work_from_block_template,
)
from node.chain.chainstate import BlockResult, Chainstate, TipChange
from node.mining.template import TemplateBuilder
from protocols.bitcoin.block import Block

__all__ = ["NodeTemplateSource", "PushedWorkSource", "TemplateSource", "WorkCallback"]

log = logging.getLogger("blvm.stratum_v2.source")

WorkCallback = Callable[[WorkTemplate], None]


class TemplateSource(Protocol):
    """What the SV2 server needs from whoever decides the work."""

    @property
    def extranonce_size(self) -> int: ...

    def current(self) -> WorkTemplate | None: ...

    def subscribe(self, callback: WorkCallback) -> Callable[[], None]:
        """Call `callback(work)` (from any thread) whenever new work replaces the current."""
        ...

    def refresh(self, force: bool = False) -> None:
        """Re-check for new work now (e.g. mempool changed); `force` re-issues it anyway."""
        ...

    def submit_block(self, block: Block) -> str | None:
        """Hand a solved block on; returns None when accepted, else a reason. May block."""
        ...


class NodeTemplateSource:
    """Templates from our own node; blocks back to its chainstate."""

    def __init__(
        self,
        chain: Chainstate,
        payout_script: bytes,
        mempool: Any = None,
        *,
        builder: TemplateBuilder | None = None,
        extranonce_size: int = DEFAULT_EXTRANONCE_SPACE,
        coinbase_tag: bytes = b"/blvm/",
    ) -> None:
        self.chain = chain
        self.payout_script = payout_script
        self.builder = builder or TemplateBuilder(chain, mempool)
        self._extranonce_size = extranonce_size
        self.coinbase_tag = coinbase_tag
        self._lock = threading.RLock()
        self._current: WorkTemplate | None = None
        self._key: tuple[bytes, int] | None = None
        self._next_id = 1
        self._callbacks: list[WorkCallback] = []
        self._unsubscribe_chain = chain.subscribe(self._on_tip)

    @property
    def extranonce_size(self) -> int:
        return self._extranonce_size

    def close(self) -> None:
        self._unsubscribe_chain()

    def current(self) -> WorkTemplate | None:
        with self._lock:
            if self._current is None:
                self._rebuild()
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
        """Rebuild; notify when the work changed, or always with `force` (fresh time: miners
        that take ntime from their own clock at job start need a new job now and then)."""
        with self._lock:
            work = self._rebuild(force)
            if work is None:
                return
            # Notify under the lock so two racing refreshes cannot deliver out of order
            # (callbacks only hand the work to an event loop).
            for callback in list(self._callbacks):
                callback(work)

    def _on_tip(self, change: TipChange) -> None:
        log.info("new tip %s at height %d", change.new.hash_hex, change.new.height)
        self.refresh()

    def _rebuild(self, force: bool = False) -> WorkTemplate | None:
        """Build a template; returns the new work only if it differs from the current one."""
        template = self.builder.build()
        key = (template.previousblockhash, template.mempool_sequence)
        if key == self._key and self._current is not None and not force:
            return None
        work = work_from_block_template(
            template,
            self.payout_script,
            self._next_id,
            extranonce_size=self._extranonce_size,
            coinbase_tag=self.coinbase_tag,
        )
        self._next_id += 1
        self._key = key
        self._current = work
        return work

    def submit_block(self, block: Block) -> str | None:
        result: BlockResult = self.chain.process_block(block)
        if result.reason is not None:
            log.warning("block %s rejected: %s", result.hash_hex, result.reason)
            return result.reason
        log.info("block %s accepted at height %s", result.hash_hex, result.height)
        return None


class PushedWorkSource:
    """Work pushed in by someone else: an upstream pool client, or a fixed job for a bench.

    `push(work)` replaces the current work and notifies subscribers; solved blocks go to
    `block_sink` (None: there is nowhere to submit, and the block is only reported).
    """

    def __init__(
        self,
        work: WorkTemplate | None = None,
        *,
        extranonce_size: int = DEFAULT_EXTRANONCE_SPACE,
        block_sink: Callable[[Block], str | None] | None = None,
    ) -> None:
        self._work = work
        self._extranonce_size = work.extranonce_size if work is not None else extranonce_size
        self._sink = block_sink
        self._callbacks: list[WorkCallback] = []
        self._lock = threading.RLock()

    @property
    def extranonce_size(self) -> int:
        return self._extranonce_size

    def current(self) -> WorkTemplate | None:
        return self._work

    def subscribe(self, callback: WorkCallback) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def push(self, work: WorkTemplate) -> None:
        if work.extranonce_size != self._extranonce_size:
            raise ValueError("pushed work must keep the extranonce space size")
        with self._lock:
            self._work = work
            for callback in list(self._callbacks):
                callback(work)

    def refresh(self, force: bool = False) -> None:
        if force and self._work is not None:
            self.push(self._work)

    def submit_block(self, block: Block) -> str | None:
        if self._sink is None:
            log.warning("block %s found but no block sink is configured", block.hash_hex)
            return "no-block-sink"
        return self._sink(block)

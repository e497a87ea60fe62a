"""Script checks that run while the block is still being connected (Core's CCheckQueue shape).

``BlockScriptVerifier.verify`` takes a whole block's jobs at the end of the input loop,
so the worker threads sit idle while Python resolves coins, and Python sits idle while
they verify. Here connect_block hands each transaction over as soon as its spent coins
are known; batches of about ``BATCH_INPUTS`` inputs go to the worker threads at once,
and the kernel (ctypes releases the GIL) verifies them in parallel with the rest of the
loop. ``finish`` verifies the last partial batch on the calling thread, waits, and
returns the lowest failing (tx, input), so the reject reason is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from node.chain.scriptcheck import KernelTx, ScriptFailure

BATCH_INPUTS = 96
_Job = tuple[int, bytes, Sequence[tuple[int, bytes]]]


class _State:
    __slots__ = ("cancelled", "failures", "lock", "lowest")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lowest = 1 << 62
        self.failures: list[ScriptFailure] = []
        self.cancelled = False


def _run(batch: list[_Job], flags: int, state: _State) -> None:
    for tx_index, tx_bytes, spent in batch:
        if state.cancelled or tx_index > state.lowest:
            return
        ktx = KernelTx(tx_bytes, spent)
        try:
            bad = ktx.first_failure(flags)
        finally:
            ktx.close()
        if bad is not None:
            with state.lock:
                state.failures.append(ScriptFailure(tx_index, bad))
                state.lowest = min(state.lowest, tx_index)
            return


class ScriptSession:
    """The script checks of one block."""

    __slots__ = ("_batch", "_batch_inputs", "_flags", "_futures", "_pool", "_state")

    def __init__(self, pool: ThreadPoolExecutor | None, flags: int) -> None:
        self._pool = pool
        self._flags = flags
        self._state = _State()
        self._batch: list[_Job] = []
        self._batch_inputs = 0
        self._futures: list[Future[None]] = []

    def add(self, tx_index: int, tx_bytes: bytes, spent: Sequence[tuple[int, bytes]]) -> None:
        self._batch.append((tx_index, tx_bytes, spent))
        self._batch_inputs += len(spent)
        if self._pool is not None and self._batch_inputs >= BATCH_INPUTS:
            self._futures.append(self._pool.submit(_run, self._batch, self._flags, self._state))
            self._batch = []
            self._batch_inputs = 0

    def finish(self) -> ScriptFailure | None:
        if self._batch:
            _run(self._batch, self._flags, self._state)
            self._batch = []
        for f in self._futures:
            f.result()
        self._futures = []
        failures = self._state.failures
        return min(failures) if failures else None

    def cancel(self) -> None:
        """Stop queued work early (the block already failed another check)."""
        self._state.cancelled = True
        for f in self._futures:
            f.cancel()
        for f in self._futures:
            if not f.cancelled():
                f.result()
        self._futures = []


class ScriptCheckQueue:
    """Worker threads shared by every block a chainstate connects."""

    def __init__(self, workers: int | None = None) -> None:
        import os

        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self._pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="scriptcheck")
            if self.workers > 1
            else None
        )

    def session(self, flags: int) -> ScriptSession:
        return ScriptSession(self._pool, flags)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

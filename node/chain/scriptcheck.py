"""Script verification through libbitcoinkernel (Bitcoin Core's interpreter, via py-bitcoinkernel).

API (stable; block connection calls it):

- ``script_flags(height, params, block_hash=None) -> int``: Core's GetBlockScriptFlags:
  P2SH|WITNESS|TAPROOT always (except the per-hash exceptions in ``params``), DERSIG from
  BIP66, CHECKLOCKTIMEVERIFY from BIP65, CHECKSEQUENCEVERIFY from CSV, NULLDUMMY from segwit.
- ``verify_input(tx_bytes, index, spent_outputs, flags) -> bool``: one input; ``spent_outputs``
  are the outputs spent by *all* inputs of the transaction (taproot signs over all of them),
  as ``TxOut`` or ``(amount, script_pubkey)`` pairs.
- ``verify_tx(tx_bytes, spent_outputs, flags) -> int | None``: first failing input or None.
- ``BlockScriptVerifier(workers=None)``: ``verify(jobs, flags) -> ScriptFailure | None`` where
  ``jobs`` is a sequence of ``ScriptJob(tx_index, tx_bytes, spent_outputs)`` (coinbase
  excluded); the returned failure is the lowest (tx index, input index) that fails, so the
  caller raises ``ConsensusError(script_verify_failed(...))`` deterministically. ``close()``
  stops the worker threads (also a context manager).
- ``ScriptCheckError``: misuse (flags the kernel refuses, wrong spent-output count) — a bug in
  the caller, never a consensus verdict.

Why the C API directly: pbk's object constructors copy bytes element by element
(``(c_ubyte*n)(*raw)``), ~90 % of the time on a 1 MB block. Here the bytes objects are passed
as ``void*`` (no copy at all: the kernel deserializes from our buffer), each transaction and its
PrecomputedTransactionData are built once, and every call goes through ctypes foreign functions,
which release the GIL, so worker threads verify signatures in parallel.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from node.chain.errors import ChainError
from node.chain.params import ChainParams, ScriptFlag


class ScriptCheckError(ChainError):
    """The kernel refused the request itself (bad flags, missing spent outputs)."""


class _OutputLike(Protocol):
    value: int
    script_pubkey: bytes


SpentOutput = _OutputLike | tuple[int, bytes]


def _amount_script(out: SpentOutput) -> tuple[int, bytes]:
    if isinstance(out, tuple):
        return out
    return out.value, out.script_pubkey


# -- C bindings -------------------------------------------------------------------------------


def _load_library() -> ctypes.CDLL:
    from pbk.capi.library import BITCOINKERNEL_LIB  # the .so that pbk ships and already loaded

    return BITCOINKERNEL_LIB


_LIB = _load_library()
_vp = ctypes.c_void_p


def _fn(name: str, restype: object, *argtypes: object) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    # A fresh prototype per symbol so pbk's own function objects keep their signatures.
    proto = ctypes.CFUNCTYPE(restype, *argtypes)
    return proto((name, _LIB))


_tx_create = _fn("btck_transaction_create", _vp, _vp, ctypes.c_size_t)
_tx_destroy = _fn("btck_transaction_destroy", None, _vp)
_tx_count_inputs = _fn("btck_transaction_count_inputs", ctypes.c_size_t, _vp)
_spk_create = _fn("btck_script_pubkey_create", _vp, _vp, ctypes.c_size_t)
_spk_destroy = _fn("btck_script_pubkey_destroy", None, _vp)
_out_create = _fn("btck_transaction_output_create", _vp, _vp, ctypes.c_int64)
_out_destroy = _fn("btck_transaction_output_destroy", None, _vp)
_ptd_create = _fn("btck_precomputed_transaction_data_create", _vp, _vp, _vp, ctypes.c_size_t)
_ptd_destroy = _fn("btck_precomputed_transaction_data_destroy", None, _vp)
_verify = _fn(
    "btck_script_pubkey_verify",
    ctypes.c_int32,
    _vp,
    ctypes.c_int64,
    _vp,
    _vp,
    ctypes.c_uint32,
    ctypes.c_uint32,
    ctypes.POINTER(ctypes.c_ubyte),
)

_STATUS_TEXT = {1: "invalid flags combination", 2: "spent outputs required"}
CONSENSUS_FLAGS = int(ScriptFlag.ALL)


def script_flags(height: int, params: ChainParams, block_hash: bytes | None = None) -> int:
    """Consensus script flags for a block at ``height`` (Core's GetBlockScriptFlags)."""
    flags = int(ScriptFlag.P2SH | ScriptFlag.WITNESS | ScriptFlag.TAPROOT)
    if block_hash is not None and params.script_flag_exceptions:
        exception = params.script_flag_exception(block_hash)
        if exception is not None:
            flags = exception
    if height >= params.bip66_height:
        flags |= ScriptFlag.DERSIG
    if height >= params.bip65_height:
        flags |= ScriptFlag.CHECKLOCKTIMEVERIFY
    if height >= params.csv_height:
        flags |= ScriptFlag.CHECKSEQUENCEVERIFY
    if height >= params.segwit_height:
        flags |= ScriptFlag.NULLDUMMY
    return int(flags)


def _check_flags(flags: int) -> None:
    if flags & ~CONSENSUS_FLAGS:
        raise ScriptCheckError(f"non-consensus script flags {flags & ~CONSENSUS_FLAGS:#x}")
    # Core's interpreter asserts WITNESS implies P2SH; never hand the kernel a process abort.
    if flags & ScriptFlag.WITNESS and not flags & ScriptFlag.P2SH:
        raise ScriptCheckError("WITNESS flag requires P2SH")


class KernelTx:
    """One transaction inside the kernel with its spent outputs and precomputed sighash data.

    Built once per transaction and reused for all its inputs; ``close()`` frees the C objects.
    """

    __slots__ = ("_outputs", "_ptd", "_scripts", "_tx", "amounts", "n_inputs")

    def __init__(self, tx_bytes: bytes, spent_outputs: Sequence[SpentOutput]) -> None:
        self._tx = self._ptd = None
        self._scripts: list[int] = []
        self._outputs: list[int] = []
        if not isinstance(tx_bytes, bytes):
            tx_bytes = bytes(tx_bytes)
        tx = _tx_create(tx_bytes, len(tx_bytes))
        if not tx:
            raise ScriptCheckError("kernel could not deserialize the transaction")
        self._tx = tx
        self.n_inputs = _tx_count_inputs(tx)
        if len(spent_outputs) != self.n_inputs:
            self.close()
            raise ScriptCheckError(f"{len(spent_outputs)} spent outputs for {self.n_inputs} inputs")
        amounts = []
        scripts = self._scripts
        outputs = self._outputs
        for out in spent_outputs:
            amount, script = _amount_script(out)
            if not isinstance(script, bytes):
                script = bytes(script)
            spk = _spk_create(script, len(script))
            scripts.append(spk)
            outputs.append(_out_create(spk, amount))
            amounts.append(amount)
        self.amounts = amounts
        array = (ctypes.c_void_p * len(outputs))(*outputs)
        self._ptd = _ptd_create(tx, array, len(outputs))
        if not self._ptd:
            self.close()
            raise ScriptCheckError("kernel could not precompute transaction data")

    def verify(self, index: int, flags: int) -> bool:
        status = ctypes.c_ubyte(0)
        ok = _verify(
            self._scripts[index],
            self.amounts[index],
            self._tx,
            self._ptd,
            index,
            flags,
            ctypes.byref(status),
        )
        if not ok and status.value:
            raise ScriptCheckError(_STATUS_TEXT.get(status.value, f"status {status.value}"))
        return bool(ok)

    def first_failure(self, flags: int, start: int = 0, end: int | None = None) -> int | None:
        """Index of the first input in ``start..end`` whose script fails, or None."""
        verify = _verify
        status = ctypes.c_ubyte(0)
        ref = ctypes.byref(status)
        tx, ptd, scripts, amounts = self._tx, self._ptd, self._scripts, self.amounts
        for i in range(start, self.n_inputs if end is None else end):
            if not verify(scripts[i], amounts[i], tx, ptd, i, flags, ref):
                if status.value:
                    raise ScriptCheckError(_STATUS_TEXT.get(status.value, f"status {status.value}"))
                return i
        return None

    def close(self) -> None:
        if self._ptd:
            _ptd_destroy(self._ptd)
            self._ptd = None
        for out in self._outputs:
            _out_destroy(out)
        for spk in self._scripts:
            _spk_destroy(spk)
        self._outputs = []
        self._scripts = []
        if self._tx:
            _tx_destroy(self._tx)
            self._tx = None

    def __enter__(self) -> KernelTx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def verify_input(
    tx_bytes: bytes, index: int, spent_outputs: Sequence[SpentOutput], flags: int
) -> bool:
    """True when input ``index`` of the serialized transaction satisfies its spent script."""
    _check_flags(flags)
    with KernelTx(tx_bytes, spent_outputs) as ktx:
        if not 0 <= index < ktx.n_inputs:
            raise ScriptCheckError(f"input index {index} out of range ({ktx.n_inputs} inputs)")
        return ktx.verify(index, flags)


def verify_tx(tx_bytes: bytes, spent_outputs: Sequence[SpentOutput], flags: int) -> int | None:
    """Index of the first failing input of a transaction, or None when all pass."""
    _check_flags(flags)
    with KernelTx(tx_bytes, spent_outputs) as ktx:
        return ktx.first_failure(flags)


@dataclass(frozen=True, slots=True)
class ScriptJob:
    tx_index: int  # position in the block (coinbase = 0 never needs a job)
    tx_bytes: bytes  # serialization with witness
    spent_outputs: Sequence[SpentOutput]


@dataclass(frozen=True, slots=True, order=True)
class ScriptFailure:
    tx_index: int
    input_index: int

    def detail(self) -> str:
        return f"tx {self.tx_index} input {self.input_index}"


class BlockScriptVerifier:
    """Verifies every input of a block on a pool of threads; returns the first failure.

    The block's inputs are cut into contiguous chunks of about equal input counts (a few per
    worker). Small transactions stay whole inside a chunk; a transaction larger than a chunk
    is built once in the kernel and its input ranges are shared out (verifying different
    inputs of one transaction concurrently is read-only, as in Core's check queue). A chunk
    stops early once a failure before its position is known, so the reported failure is
    always the lowest (tx index, input index) whatever the thread timing.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self._pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="scriptcheck")
            if self.workers > 1
            else None
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> BlockScriptVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def verify(self, jobs: Sequence[ScriptJob], flags: int) -> ScriptFailure | None:
        _check_flags(flags)
        if not jobs:
            return None
        box = _FailureBox()
        if self._pool is None:
            return _run_chunk([_Unit(job, 0, len(job.spent_outputs)) for job in jobs], flags, box)
        chunks, shared = _plan(jobs, self.workers * 4)
        try:
            futures = [self._pool.submit(_run_chunk, chunk, flags, box) for chunk in chunks]
            failures = [r for r in (f.result() for f in futures) if r is not None]
        finally:
            for ktx in shared:
                ktx.close()
        return min(failures) if failures else None


@dataclass(slots=True)
class _Unit:
    """Inputs ``start..end`` of one job; ``ktx`` is set when several units share the tx."""

    job: ScriptJob
    start: int
    end: int
    ktx: KernelTx | None = None


class _FailureBox:
    """Lowest failing (tx index, input index) seen so far, shared by the chunks of one block."""

    __slots__ = ("first", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first = (1 << 62, 0)

    def report(self, where: tuple[int, int]) -> None:
        with self.lock:
            if where < self.first:
                self.first = where


def _run_chunk(units: Sequence[_Unit], flags: int, box: _FailureBox) -> ScriptFailure | None:
    for unit in units:
        tx_index = unit.job.tx_index
        if (tx_index, unit.start) > box.first:
            return None
        ktx = unit.ktx
        own = ktx is None
        if own:
            ktx = KernelTx(unit.job.tx_bytes, unit.job.spent_outputs)
        try:
            bad = ktx.first_failure(flags, unit.start, unit.end)
        finally:
            if own:
                ktx.close()
        if bad is not None:
            box.report((tx_index, bad))
            return ScriptFailure(tx_index, bad)
    return None


def _plan(jobs: Sequence[ScriptJob], parts: int) -> tuple[list[list[_Unit]], list[KernelTx]]:
    """Chunks of about ``total / parts`` inputs each, plus the KernelTx objects they share."""
    total = sum(len(j.spent_outputs) for j in jobs)
    per = max(1, -(-total // parts))
    chunks: list[list[_Unit]] = []
    shared: list[KernelTx] = []
    current: list[_Unit] = []
    acc = 0
    try:
        for job in jobs:
            n = len(job.spent_outputs)
            if n > per:
                if current:
                    chunks.append(current)
                    current, acc = [], 0
                ktx = KernelTx(job.tx_bytes, job.spent_outputs)
                shared.append(ktx)
                chunks += [[_Unit(job, s, min(s + per, n), ktx)] for s in range(0, n, per)]
                continue
            current.append(_Unit(job, 0, n))
            acc += n
            if acc >= per:
                chunks.append(current)
                current, acc = [], 0
    except BaseException:
        for ktx in shared:
            ktx.close()
        raise
    if current:
        chunks.append(current)
    return chunks, shared

"""The chainstate: headers, blocks on disk, the UTXO set and the active chain, kept consistent.

API (stable; the node, RPC, mining and CLI build on it):

- ``Chainstate.open(datadir, params, prune_mib=0, script_threads=None, *, fast_prune=False,
  cache_entries=400_000, flush_interval=300.0, clock=time.time)``; ``close()`` (flushes;
  also a context manager). ``prune_mib``: 0 = keep everything, else >= 550
  (``PruneConfigError``); ``fast_prune`` is the regtest-only test mode (64 KiB files, any
  target). Opening a datadir of another network raises ``ChainstateError``.
- ``process_block(block | bytes, now=None) -> BlockResult``: ``status`` ACCEPTED (checked
  and stored; ``tip_changed`` says whether it moved the tip), DUPLICATE, or INVALID with
  Core's ``reason`` (``block-decode-failed`` for undecodable bytes). Never raises for bad
  input and never changes the tip/UTXO set on a rejection. An ACCEPTED result with
  ``reason == "reorg-beyond-pruned-window"`` means a more-work branch exists that this
  pruned node cannot reorganise to.
- ``process_headers(headers, now=None) -> HeadersResult`` (stops at the first bad one).
- ``tip`` (``TipInfo``: hash, height, chainwork, time, median_time_past), ``height``,
  ``best_header`` (most-work valid header, ahead of ``tip`` while syncing), ``tree``
  (the ``HeaderTree``: locators, ancestors),
  ``block_hash_at(h)``, ``in_active_chain(hash)``, ``entry(hash)`` (``HeaderEntry``).
- ``get_block(hash) -> Block | None``, ``get_block_bytes(hash)`` (None when unknown or
  pruned), ``get_utxo(outpoint36) -> Coin | None``.
- ``utxo_stats() -> UtxoStats(count, total_amount, digest)`` (flushes first; the digest
  is SHA-256 over all entries in key order, identical for identical UTXO sets).
- ``prune_info() -> PruneInfo(pruned, prune_height, target_bytes, size_on_disk, files)``.
- ``subscribe(callback) -> unsubscribe``: ``callback(TipChange(old, new, connected,
  disconnected))`` after every tip change, synchronously, exceptions logged.
- ``flush()``: make everything durable now. ``lock``: the (reentrant) lock every public
  method holds; hold it to read several things consistently.

Behaviour: ``process_headers``/``process_block`` keep the most-work valid chain active
(reorganising when another branch gets more work; when a block of the new branch is
invalid it is marked failed with its descendants and the best remaining chain is
restored). Calls are serialised by a lock.

Layout under ``datadir``: ``chainstate/`` (one LMDB environment: coins, block index,
file statistics, the best-block marker) and ``blocks/`` (blk/rev files).

Durability: blocks and undo are appended to files as they arrive; coin changes and
index updates accumulate in memory. ``flush`` fsyncs the files, then commits coins,
index, file statistics and the best-block marker in ONE LMDB transaction. After a
crash the node therefore restarts at the last flushed block boundary with matching
coins, index and undo; blocks received after it are simply fed again.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb

from node.chain import errors as E
from node.chain.blockstore import FAST_PRUNE_FILE_SIZE, BlockStore, BlockStoreError, FileInfo
from node.chain.checkqueue import ScriptCheckQueue
from node.chain.coins import Coin
from node.chain.errors import ChainError, ConsensusError
from node.chain.headers import (
    EntryStatus,
    HeaderEntry,
    HeaderTree,
    check_header_context,
    median_time_past,
)
from node.chain.params import ChainParams
from node.chain.prune import MIN_BLOCKS_TO_KEEP, PrunePolicy, files_to_prune
from node.chain.txcheck import check_transaction
from node.chain.undo import BlockUndo
from node.chain.utxo import BlockView, CoinsCache, UtxoStats, compute_stats
from node.chain.validation import (
    CheckedBlock,
    ConnectContext,
    check_block,
    connect_block,
    contextual_check_block,
    disconnect_block,
    enforce_bip30,
)
from protocols.bitcoin.block import HEADER_SIZE, Block, BlockHeader
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.hashes import hash_to_hex, sha256d

log = logging.getLogger(__name__)

_HAVE_DATA = int(EntryStatus.HAVE_DATA)
_HAVE_UNDO = int(EntryStatus.HAVE_UNDO)
_VALID_SCRIPTS = int(EntryStatus.VALID_SCRIPTS)
_FAILED_MASK = int(EntryStatus.FAILED_MASK)

_DB_COINS = b"coins"
_DB_INDEX = b"index"
_DB_FILES = b"files"
_DB_META = b"meta"
_META_BEST = b"best"
_META_CHAIN = b"chain"
_META_FORMAT = b"format"
_META_PRUNED = b"pruned"  # set once any block file was deleted
_FORMAT = b"1"

BLOCK_DECODE_FAILED = "block-decode-failed"
REORG_BEYOND_PRUNED = "reorg-beyond-pruned-window"
DEFAULT_CACHE_ENTRIES = 400_000
DEFAULT_FLUSH_INTERVAL = 300.0  # seconds between flushes in a long sync
DEFAULT_MAP_SIZE = 1 << 36  # LMDB address space (sparse; grows on disk as needed)


class ChainstateError(ChainError):
    """The datadir cannot be used (other network, corrupt records, missing files)."""


class BlockStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # valid so far and stored (the tip may or may not have moved)
    DUPLICATE = "duplicate"  # already stored
    INVALID = "invalid"  # broke a rule or could not be decoded; see ``reason``


@dataclass(frozen=True, slots=True)
class TipInfo:
    hash: bytes  # internal byte order
    height: int
    chainwork: int
    time: int
    median_time_past: int

    @property
    def hash_hex(self) -> str:
        return hash_to_hex(self.hash)


@dataclass(frozen=True, slots=True)
class TipChange:
    """Sent to subscribers after the active tip moved (one event per activation)."""

    old: TipInfo
    new: TipInfo
    connected: tuple[bytes, ...]  # block hashes connected, in order
    disconnected: tuple[bytes, ...]  # block hashes disconnected, tip first


@dataclass(frozen=True, slots=True)
class BlockResult:
    status: BlockStatus
    block_hash: bytes | None
    height: int | None
    tip: TipInfo
    tip_changed: bool = False
    reason: str | None = None
    message: str = ""

    @property
    def hash_hex(self) -> str | None:
        return hash_to_hex(self.block_hash) if self.block_hash else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "hash": self.hash_hex,
            "height": self.height,
            "reason": self.reason,
            "message": self.message,
            "tip": self.tip.hash_hex,
            "tip_height": self.tip.height,
            "tip_changed": self.tip_changed,
        }


@dataclass(frozen=True, slots=True)
class HeadersResult:
    accepted: int  # headers processed without error (new or already known)
    last_hash: bytes | None
    last_height: int | None
    reason: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class PruneInfo:
    pruned: bool  # pruning enabled
    prune_height: int  # lowest height whose block and undo are still stored on the active chain
    target_bytes: int
    size_on_disk: int
    files: int  # blk/rev pairs present

    def to_dict(self) -> dict[str, Any]:
        return {
            "pruned": self.pruned,
            "prune_height": self.prune_height,
            "prune_target_size": self.target_bytes,
            "size_on_disk": self.size_on_disk,
            "files": self.files,
        }


@dataclass(slots=True)
class _Activation:
    connected: list[bytes] = field(default_factory=list)
    disconnected: list[bytes] = field(default_factory=list)
    failures: dict[bytes, ConsensusError] = field(default_factory=dict)
    refused: str | None = None


class Chainstate:
    """Owns one datadir; not thread-safe across processes, serialised within one by a lock."""

    def __init__(
        self,
        datadir: Path,
        params: ChainParams,
        env: Any,
        store: BlockStore,
        tree: HeaderTree,
        policy: PrunePolicy,
        verifier: ScriptCheckQueue,
        cache_entries: int,
        flush_interval: float,
        clock: Callable[[], float],
    ) -> None:
        self.datadir = datadir
        self.params = params
        self._env = env
        self._dbs = {
            name: env.open_db(name) for name in (_DB_COINS, _DB_INDEX, _DB_FILES, _DB_META)
        }
        self.coins = CoinsCache(env, self._dbs[_DB_COINS])
        self.store = store
        self.tree = tree
        self.policy = policy
        self.verifier = verifier
        self.cache_entries = cache_entries
        self.flush_interval = flush_interval
        self._clock = clock
        self._chain: list[HeaderEntry] = []
        self._dirty: set[HeaderEntry] = set()
        self._candidates: set[HeaderEntry] = set()
        self._unlinked: dict[bytes, list[HeaderEntry]] = {}
        self._recent: dict[bytes, CheckedBlock] = {}
        self._failure_reason: dict[bytes, str] = {}
        self._subscribers: list[Callable[[TipChange], None]] = []
        self._lock = threading.RLock()
        self._last_flush = clock()
        self._closed = False
        self._pruned = False  # some block files were deleted (ever)

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        datadir: str | os.PathLike[str],
        params: ChainParams,
        prune_mib: float = 0,
        script_threads: int | None = None,
        *,
        fast_prune: bool = False,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        map_size: int = DEFAULT_MAP_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> Chainstate:
        """Open (or create) the chainstate in ``datadir`` for ``params``' network.

        ``prune_mib``: 0 keeps every block; otherwise a target of at least 550 MiB.
        ``fast_prune`` (regtest only, for tests): 64 KiB block files, any positive target.
        ``script_threads``: script-verification worker threads (default: CPU count).
        """
        if fast_prune and params.name != "regtest":
            raise ChainstateError("fast_prune is a regtest-only test mode")
        policy = PrunePolicy.from_mib(prune_mib, params.prune_after_height, fast_prune=fast_prune)
        root = Path(datadir)
        (root / "chainstate").mkdir(parents=True, exist_ok=True)
        env = lmdb.open(str(root / "chainstate"), map_size=map_size, max_dbs=8, readahead=False)
        try:
            meta = env.open_db(_DB_META)
            with env.begin(write=True) as txn:
                chain = txn.get(_META_CHAIN, db=meta)
                if chain is None:
                    txn.put(_META_CHAIN, params.name.encode(), db=meta)
                    txn.put(_META_FORMAT, _FORMAT, db=meta)
                elif chain.decode() != params.name:
                    raise ChainstateError(
                        f"{root} holds a {chain.decode()} chain, not {params.name}; "
                        "use another --datadir"
                    )
            files_db = env.open_db(_DB_FILES)
            index_db = env.open_db(_DB_INDEX)
            with env.begin() as txn:
                files = {
                    int.from_bytes(k, "big"): FileInfo.parse(bytes(v))
                    for k, v in txn.cursor(db=files_db)
                }
                entries = [
                    HeaderEntry.from_bytes(bytes(v), bytes(k)) for k, v in txn.cursor(db=index_db)
                ]
                best = txn.get(_META_BEST, db=meta)
                was_pruned = txn.get(_META_PRUNED, db=meta) is not None
            if was_pruned and not policy.enabled:
                raise ChainstateError(
                    f"{root} was pruned: blocks are missing, so it cannot be opened without "
                    "a prune target; pass one (--prune) or start from an empty --datadir"
                )
            max_file = FAST_PRUNE_FILE_SIZE if fast_prune else None
            store_kwargs = {"max_file_size": max_file} if max_file else {}
            store = BlockStore(root / "blocks", params.message_start, files=files, **store_kwargs)
            tree = HeaderTree.from_entries(params, entries) if entries else HeaderTree(params)
        except Exception:
            env.close()
            raise
        state = cls(
            root,
            params,
            env,
            store,
            tree,
            policy,
            ScriptCheckQueue(script_threads),
            cache_entries,
            flush_interval,
            clock,
        )
        state._pruned = was_pruned
        state._load(best)
        return state

    def _load(self, best: bytes | None) -> None:
        tree = self.tree
        genesis = tree.genesis
        if not genesis.status & _HAVE_DATA:
            raw = self.params.genesis_bytes
            genesis.file_no, genesis.data_pos = self.store.write_block(raw, 0)
            genesis.tx_count = 1
            genesis.status |= _HAVE_DATA | _VALID_SCRIPTS
            self._dirty.add(genesis)
        tip = tree.get(best) if best is not None else genesis
        if tip is None:
            raise ChainstateError("best-block marker points at an unknown block (corrupt index)")
        chain: list[HeaderEntry] = []
        e: HeaderEntry | None = tip
        while e is not None:
            chain.append(e)
            e = e.parent
        chain.reverse()
        self._chain = chain
        # Files that a prune committed to the index but did not get to delete.
        for num, info in self.store.files.items():
            if info.size == 0 and num != self.store.current:
                self.store.delete_files([num])
        self._rebuild_candidates()
        if best is None:
            self.flush()
        self._activate()
        log.debug("chainstate opened at %s height %d", self.tip.hash_hex, self.height)

    def _rebuild_candidates(self) -> None:
        chain = self._chain
        complete: set[HeaderEntry] = set(chain)
        tip_work = chain[-1].chainwork
        for e in sorted(self.tree.entries(), key=lambda x: x.height):
            if e in complete or not e.status & _HAVE_DATA or e.parent is None:
                continue
            if e.parent in complete:
                complete.add(e)
                if not e.status & _FAILED_MASK and e.chainwork > tip_work:
                    self._candidates.add(e)
            else:
                self._unlinked.setdefault(e.prev_hash, []).append(e)

    # -- queries -----------------------------------------------------------------------------
    @property
    def tip(self) -> TipInfo:
        e = self._chain[-1]
        return TipInfo(e.hash, e.height, e.chainwork, e.time, median_time_past(e))

    @property
    def height(self) -> int:
        return len(self._chain) - 1

    @property
    def lock(self) -> threading.RLock:
        """Held by every public method; hold it to read several things consistently."""
        return self._lock

    @property
    def best_header(self) -> TipInfo:
        """The most-work valid header known (may be ahead of ``tip`` while syncing)."""
        e = self.tree.best
        return TipInfo(e.hash, e.height, e.chainwork, e.time, median_time_past(e))

    def block_hash_at(self, height: int) -> bytes | None:
        if 0 <= height < len(self._chain):
            return self._chain[height].hash
        return None

    def entry(self, block_hash: bytes) -> HeaderEntry | None:
        return self.tree.get(block_hash)

    def in_active_chain(self, block_hash: bytes) -> bool:
        e = self.tree.get(block_hash)
        return e is not None and e.height < len(self._chain) and self._chain[e.height] is e

    def get_block_bytes(self, block_hash: bytes) -> bytes | None:
        """Serialized block, or None when unknown or not stored (pruned)."""
        with self._lock:
            e = self.tree.get(block_hash)
            if e is None or not e.status & _HAVE_DATA:
                return None
            return self.store.read_block(e.file_no, e.data_pos)

    def get_block(self, block_hash: bytes) -> Block | None:
        raw = self.get_block_bytes(block_hash)
        return None if raw is None else Block.from_bytes(raw)

    def get_utxo(self, outpoint: bytes) -> Coin | None:
        """The unspent coin at a 36-byte outpoint, or None."""
        if len(outpoint) != 36:
            raise ValueError("an outpoint is 36 bytes: txid (internal order) || index LE")
        with self._lock:
            return self.coins.get(outpoint)

    def utxo_stats(self) -> UtxoStats:
        """Count, total amount and digest of the UTXO set at the tip (flushes first)."""
        with self._lock:
            self.flush()
            return compute_stats(self._env, self._dbs[_DB_COINS])

    def prune_info(self) -> PruneInfo:
        with self._lock:
            chain = self._chain
            low = len(chain) - 1
            if not self._pruned:
                low = 0
            while low > 0 and chain[low - 1].status & _HAVE_DATA:
                low -= 1
            present = sum(1 for i in self.store.files.values() if i.size)
            return PruneInfo(
                self.policy.enabled,
                low,
                self.policy.target_bytes,
                self.store.total_size(),
                present,
            )

    def subscribe(self, callback: Callable[[TipChange], None]) -> Callable[[], None]:
        """Call ``callback(TipChange)`` after every tip change; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # -- headers -----------------------------------------------------------------------------
    def process_headers(
        self, headers: Iterable[BlockHeader | bytes], now: float | None = None
    ) -> HeadersResult:
        """Validate and store headers in order; stops at the first bad one."""
        accepted = 0
        last: HeaderEntry | None = None
        with self._lock:
            now_i = int(self._clock() if now is None else now)
            for header in headers:
                try:
                    raw = header if isinstance(header, bytes) else header.serialize()
                    if len(raw) != HEADER_SIZE:
                        raise ConsensusError("bad-header-length", f"{len(raw)} bytes, not 80")
                    known = self.tree.get(_hash80(raw))
                    entry = self.tree.accept(raw, now_i)
                except ConsensusError as exc:
                    return HeadersResult(
                        accepted,
                        last.hash if last else None,
                        last.height if last else None,
                        exc.reason,
                        exc.message,
                    )
                if not known:
                    self._dirty.add(entry)
                last = entry
                accepted += 1
        return HeadersResult(accepted, last.hash if last else None, last.height if last else None)

    # -- blocks ------------------------------------------------------------------------------
    def process_block(self, block: Block | bytes, now: float | None = None) -> BlockResult:
        """Check, store and (if it extends the most-work valid chain) connect a block.

        Never raises for bad input: undecodable bytes and rule violations come back as
        ``INVALID`` results with Core's reason, with chain state unchanged.
        """
        with self._lock:
            if self._closed:
                raise ChainstateError("chainstate is closed")
            return self._process_block(block, now)

    def test_block_validity(self, block: Block, now: float | None = None) -> str | None:
        """Core's TestBlockValidity as getblocktemplate's proposal mode uses it: would
        `block` connect on our tip, its proof of work aside? Returns None when it would, else
        the reject reason. Nothing is stored; scripts are verified.
        """
        with self._lock:
            if self._closed:
                raise ChainstateError("chainstate is closed")
            header = block.header
            h = block.hash
            known = self.tree.get(h)
            if known is not None and known.status & _HAVE_DATA:
                return E.DUPLICATE_INVALID if known.status & _FAILED_MASK else E.DUPLICATE
            chain = self._chain
            tip = chain[-1]
            if header.prev_hash != tip.hash:
                return E.INCONCLUSIVE_NOT_BEST_PREVBLK
            now_i = int(self._clock() if now is None else now)
            reason = check_header_context(
                header.version, header.time, header.bits, tip, self.params, now_i
            )
            if reason is not None:
                return reason
            height = tip.height + 1
            try:
                checked = check_block(block, self.params, check_transaction, check_pow=False)
                contextual_check_block(block, self.params, height, median_time_past(tip))
                ctx = ConnectContext(
                    height,
                    h,
                    median_time_past(tip),
                    lambda at: median_time_past(chain[at]),
                    enforce_bip30(
                        self.params,
                        height,
                        h,
                        lambda at: chain[at].hash if 0 <= at < len(chain) else None,
                    ),
                )
                connect_block(checked, ctx, BlockView(self.coins), self.params, self.verifier)
            except ConsensusError as exc:
                return exc.reason
            return None

    def _result(
        self,
        status: BlockStatus,
        h: bytes | None,
        height: int | None,
        old_tip: HeaderEntry,
        reason: str | None = None,
        message: str = "",
    ) -> BlockResult:
        return BlockResult(
            status, h, height, self.tip, self._chain[-1] is not old_tip, reason, message
        )

    def _process_block(self, block: Block | bytes, now: float | None) -> BlockResult:
        old_tip = self._chain[-1]
        if isinstance(block, (bytes, bytearray, memoryview)):
            raw = bytes(block)
            try:
                parsed = Block.from_bytes(raw)
            except (BitcoinProtocolError, ValueError) as exc:
                return self._result(
                    BlockStatus.INVALID, None, None, old_tip, BLOCK_DECODE_FAILED, str(exc)
                )
        else:
            parsed = block
            raw = block.serialize()
        header_raw = raw[:HEADER_SIZE]
        h = _hash80(header_raw)
        known = self.tree.get(h)
        if known is not None and known.status & _HAVE_DATA:
            if known.status & _FAILED_MASK:
                reason = self._failure_reason.get(h, E.DUPLICATE_INVALID)
                return self._result(BlockStatus.INVALID, h, known.height, old_tip, reason)
            return self._result(BlockStatus.DUPLICATE, h, known.height, old_tip, E.DUPLICATE)
        now_i = int(self._clock() if now is None else now)
        try:
            entry = self.tree.accept(header_raw, now_i)
        except ConsensusError as exc:
            return self._result(
                BlockStatus.INVALID, h, exc.height, old_tip, exc.reason, exc.message
            )
        if known is None:
            self._dirty.add(entry)
        try:
            checked = check_block(parsed, self.params, check_transaction, check_pow=False)
            contextual_check_block(
                parsed, self.params, entry.height, median_time_past(entry.parent)
            )
        except ConsensusError as exc:
            if exc.header_invalid:
                self._mark_failed(entry, exc.reason)
            return self._result(
                BlockStatus.INVALID, h, entry.height, old_tip, exc.reason, exc.message
            )
        entry.file_no, entry.data_pos = self.store.write_block(raw, entry.height)
        entry.tx_count = len(parsed.txs)
        entry.status |= _HAVE_DATA
        self._dirty.add(entry)
        self._remember(h, checked)
        self._link(entry)
        act = self._activate()
        if entry.status & _FAILED_MASK:
            reason = self._failure_reason.get(h, E.BAD_PREVBLK)
            err = act.failures.get(h)
            return self._result(
                BlockStatus.INVALID,
                h,
                entry.height,
                old_tip,
                reason,
                err.message if err else "",
            )
        self._maybe_flush()
        message = act.refused or ""
        return self._result(
            BlockStatus.ACCEPTED,
            h,
            entry.height,
            old_tip,
            REORG_BEYOND_PRUNED if act.refused else None,
            message,
        )

    def _remember(self, h: bytes, checked: CheckedBlock) -> None:
        recent = self._recent
        recent[h] = checked
        while len(recent) > 8:  # parsed blocks are ~10x their size in memory
            del recent[next(iter(recent))]

    def _link(self, entry: HeaderEntry) -> None:
        """Make ``entry`` (and stored descendants waiting for it) connect candidates."""
        parent = entry.parent
        chain = self._chain
        parent_ok = parent is not None and (
            (parent.height < len(chain) and chain[parent.height] is parent)
            or self._complete(parent)
        )
        if not parent_ok:
            self._unlinked.setdefault(entry.prev_hash, []).append(entry)
            return
        todo = [entry]
        while todo:
            e = todo.pop()
            if not e.status & _FAILED_MASK:
                self._candidates.add(e)
            todo.extend(self._unlinked.pop(e.hash, ()))

    def _complete(self, e: HeaderEntry) -> bool:
        """Every block from ``e`` down to the active chain is stored."""
        chain = self._chain
        while e is not None:
            if e.height < len(chain) and chain[e.height] is e:
                return True
            if not e.status & _HAVE_DATA:
                return False
            e = e.parent  # type: ignore[assignment]
        return False

    def _mark_failed(self, entry: HeaderEntry, reason: str) -> None:
        self._failure_reason[entry.hash] = reason
        descendants = self.tree.mark_failed(entry)
        self._dirty.add(entry)
        self._dirty.update(descendants)
        self._candidates.discard(entry)
        self._candidates.difference_update(descendants)

    # -- activation (ActivateBestChain) --------------------------------------------------------
    def _best_candidate(self) -> HeaderEntry | None:
        best = None
        for e in self._candidates:
            if e.status & _FAILED_MASK:
                continue
            if (
                best is None
                or e.chainwork > best.chainwork
                or (e.chainwork == best.chainwork and e.seq < best.seq)
            ):
                best = e
        return best

    def _activate(self) -> _Activation:
        act = _Activation()
        old = self.tip
        while True:
            tip = self._chain[-1]
            self._candidates = {
                e
                for e in self._candidates
                if not e.status & _FAILED_MASK and e.chainwork > tip.chainwork
            }
            target = self._best_candidate()
            if target is None:
                break
            fork = self.tree.fork_point(tip, target)
            if not self._has_data(target, fork, _HAVE_DATA):
                self._candidates.discard(target)  # its blocks were pruned meanwhile
                continue
            if not self._has_data(tip, fork, _HAVE_DATA | _HAVE_UNDO):
                act.refused = (
                    f"block {target.hash_hex} needs a reorg to height {fork.height}, below "
                    f"the stored undo data (prune height {self.prune_info().prune_height})"
                )
                log.warning("refusing reorg: %s", act.refused)
                self._candidates.discard(target)
                continue
            while self._chain[-1] is not fork:
                act.disconnected.append(self._disconnect_tip())
            path = []
            e: HeaderEntry | None = target
            while e is not fork:
                path.append(e)
                e = e.parent  # type: ignore[union-attr]
            for e in reversed(path):
                try:
                    self._connect_tip(e)
                except ConsensusError as exc:
                    exc.height = e.height
                    exc.block_hash = e.hash
                    log.info("block %s at %d invalid: %s", e.hash_hex, e.height, exc)
                    act.failures[e.hash] = exc
                    self._mark_failed(e, exc.reason)
                    break
                act.connected.append(e.hash)
                self._maybe_flush()
        if self._chain[-1].hash != old.hash:
            self._notify(TipChange(old, self.tip, tuple(act.connected), tuple(act.disconnected)))
        return act

    def _has_data(self, start: HeaderEntry, fork: HeaderEntry, need: int) -> bool:
        """Every block from ``start`` down to (excluding) ``fork`` has ``need`` stored."""
        e = start
        while e is not fork:
            if e.status & need != need:
                return False
            e = e.parent  # type: ignore[assignment]
        return True

    def _load_checked(self, entry: HeaderEntry) -> CheckedBlock:
        checked = self._recent.pop(entry.hash, None)
        if checked is not None:
            return checked
        raw = self.store.read_block(entry.file_no, entry.data_pos)
        block = Block.from_bytes(raw)
        if block.hash != entry.hash:
            raise ChainstateError(f"block file record for {entry.hash_hex} holds another block")
        return check_block(block, self.params, check_transaction, check_pow=False)

    def _connect_tip(self, entry: HeaderEntry) -> None:
        chain = self._chain
        parent = entry.parent
        assert parent is chain[-1]
        checked = self._load_checked(entry)
        height = entry.height
        ctx = ConnectContext(
            height,
            entry.hash,
            median_time_past(parent),
            lambda h: median_time_past(chain[h]),
            enforce_bip30(
                self.params,
                height,
                entry.hash,
                lambda h: chain[h].hash if 0 <= h < len(chain) else None,
            ),
        )
        view = BlockView(self.coins)
        undo, _stats = connect_block(checked, ctx, view, self.params, self.verifier)
        entry.undo_pos = self.store.write_undo(entry.file_no, undo.serialize(entry.hash))
        view.apply()
        entry.status |= _HAVE_UNDO | _VALID_SCRIPTS
        self._dirty.add(entry)
        chain.append(entry)

    def _disconnect_tip(self) -> bytes:
        chain = self._chain
        entry = chain[-1]
        if entry.height == 0:
            raise ChainstateError("cannot disconnect the genesis block")
        checked = self._load_checked(entry)
        try:
            undo = BlockUndo.parse(self.store.read_undo(entry.file_no, entry.undo_pos), entry.hash)
        except (BlockStoreError, ChainError) as exc:
            raise ChainstateError(f"undo data of {entry.hash_hex} unusable: {exc}") from exc
        view = BlockView(self.coins)
        disconnect_block(checked.block, undo, view)
        view.apply()
        chain.pop()
        if not entry.status & _FAILED_MASK:
            self._candidates.add(entry)
        self._remember(entry.hash, checked)
        return entry.hash

    def _notify(self, change: TipChange) -> None:
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:
                log.exception("tip-change subscriber %r failed", callback)

    # -- flushing and pruning ------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        if (
            len(self.coins) > self.cache_entries
            or self._clock() - self._last_flush > self.flush_interval
        ):
            self.flush()

    def flush(self) -> None:
        """Make everything so far durable: fsync files, then one LMDB commit."""
        with self._lock:
            prune = files_to_prune(self.store.files, self.store.current, self.height, self.policy)
            pruned_entries: list[HeaderEntry] = []
            if prune:
                doomed = set(prune)
                for e in self.tree.entries():
                    if e.file_no in doomed and e.status & (_HAVE_DATA | _HAVE_UNDO):
                        e.status &= ~(_HAVE_DATA | _HAVE_UNDO)
                        e.file_no = e.data_pos = e.undo_pos = -1
                        pruned_entries.append(e)
                        self._dirty.add(e)
                for num in prune:
                    self.store.files[num] = FileInfo()
                    self.store.dirty_info.add(num)
            self.store.sync()
            dbs = self._dbs
            with self._env.begin(write=True) as txn:
                self.coins.write(txn)
                index_db = dbs[_DB_INDEX]
                for e in self._dirty:
                    txn.put(e.hash, e.to_bytes(), db=index_db)
                files_db = dbs[_DB_FILES]
                for num in self.store.dirty_info:
                    txn.put(num.to_bytes(4, "big"), self.store.files[num].serialize(), db=files_db)
                txn.put(_META_BEST, self._chain[-1].hash, db=dbs[_DB_META])
                if prune:
                    txn.put(_META_PRUNED, b"1", db=dbs[_DB_META])
                    self._pruned = True
            self.coins.committed()
            self._dirty.clear()
            self.store.dirty_info.clear()
            if prune:
                self.store.delete_files(prune)
                for e in pruned_entries:
                    self._recent.pop(e.hash, None)
                log.info(
                    "pruned block files %s (%d blocks); keeping the last %d blocks",
                    prune,
                    len(pruned_entries),
                    MIN_BLOCKS_TO_KEEP,
                )
            self._last_flush = self._clock()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.flush()
            self._closed = True
            self.verifier.close()
            self.store.close()
            self._env.close()

    def __enter__(self) -> Chainstate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _hash80(raw: bytes) -> bytes:
    return sha256d(raw)

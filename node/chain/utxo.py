"""The UTXO set: coins in LMDB behind a write-back cache.

Why a write-back cache: connecting a block touches every spent and created coin;
doing each as its own LMDB write would cost an fsync per block and leave the disk
between block boundaries. Instead changes accumulate in memory (``CoinsCache``) and
``flush`` writes all of them in ONE LMDB write transaction, which the caller uses
to store the best-block marker (and block-index updates) too. LMDB commits are
atomic and durable, so the on-disk chainstate is always the state after some whole
block, whatever moment the process dies.

Coins created and spent between two flushes never reach the disk ("fresh" entries,
as in Core's CCoinsViewCache).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from node.chain.coins import Coin, decode_amount, decode_coin, encode_coin, write_varint

_MISSING = object()


@dataclass(frozen=True, slots=True)
class UtxoStats:
    count: int
    total_amount: int
    digest: str  # hex SHA-256 over every (outpoint, coin) in key order

    def to_dict(self) -> dict[str, Any]:
        return {"utxos": self.count, "total_amount": self.total_amount, "digest": self.digest}


class CoinsCache:
    """Write-back cache over the ``coins`` database of an LMDB environment.

    Entries map outpoint -> Coin (unspent) or None (spent, deletion pending).
    ``_dirty`` holds outpoints whose state differs from the disk; ``_fresh`` those
    known NOT to be on disk, which can simply be forgotten when spent.
    """

    __slots__ = ("_cache", "_db", "_dirty", "_env", "_fresh", "_rtxn")

    def __init__(self, env: Any, db: Any) -> None:
        self._env = env
        self._db = db
        self._cache: dict[bytes, Coin | None] = {}
        self._dirty: set[bytes] = set()
        self._fresh: set[bytes] = set()
        self._rtxn: Any = None

    # -- reads ---------------------------------------------------------------------------
    def _read(self, op: bytes) -> Coin | None:
        txn = self._rtxn
        if txn is None:
            txn = self._rtxn = self._env.begin(db=self._db, buffers=False)
        raw = txn.get(op)
        if raw is None:
            return None
        coin = decode_coin(raw)
        self._cache[op] = coin
        return coin

    def get(self, op: bytes) -> Coin | None:
        coin = self._cache.get(op, _MISSING)
        if coin is _MISSING:
            return self._read(op)
        return coin  # type: ignore[return-value]

    def have(self, op: bytes) -> bool:
        return self.get(op) is not None

    def prefetch(self, ops: list[bytes]) -> None:
        """Load coins for many outpoints with one cursor pass (fewer LMDB round trips)."""
        cache = self._cache
        missing = [op for op in ops if op not in cache]
        if not missing:
            return
        txn = self._rtxn
        if txn is None:
            txn = self._rtxn = self._env.begin(db=self._db, buffers=False)
        missing.sort()
        for key, raw in txn.cursor().getmulti(missing):
            cache[key] = decode_coin(raw)

    # -- writes --------------------------------------------------------------------------
    def spend(self, op: bytes) -> Coin | None:
        """Remove and return the coin at ``op``; None if it does not exist (or is spent)."""
        cache = self._cache
        coin = cache.get(op, _MISSING)
        if coin is _MISSING:
            coin = self._read(op)
        if coin is None:
            return None
        if op in self._fresh:
            del cache[op]
            self._fresh.discard(op)
            self._dirty.discard(op)
        else:
            cache[op] = None
            self._dirty.add(op)
        return coin  # type: ignore[return-value]

    def add(self, op: bytes, coin: Coin, possible_overwrite: bool = False) -> None:
        """Add an unspent coin. ``possible_overwrite`` for coinbases (BIP30 history):
        such a coin may shadow one on disk, so it must never be treated as fresh."""
        cache = self._cache
        if not possible_overwrite and op not in cache:
            self._fresh.add(op)
        cache[op] = coin
        self._dirty.add(op)

    # -- flushing ------------------------------------------------------------------------
    @property
    def dirty_count(self) -> int:
        return len(self._dirty)

    def __len__(self) -> int:
        return len(self._cache)

    def end_read(self) -> None:
        """Drop the read snapshot so the next read sees the latest committed state."""
        if self._rtxn is not None:
            self._rtxn.abort()
            self._rtxn = None

    def write(self, txn: Any) -> int:
        """Write every pending change into the caller's write transaction.

        The caller commits (with its best-block marker) and then calls
        :meth:`committed`; if the commit fails, the cache is unchanged.
        """
        cache = self._cache
        db = self._db
        delete = txn.delete
        puts = []
        for op in sorted(self._dirty):
            coin = cache[op]
            if coin is None:
                delete(op, db=db)
            else:
                puts.append((op, encode_coin(coin)))
        if puts:
            txn.cursor(db=db).putmulti(puts)
        return len(self._dirty)

    def committed(self) -> None:
        self._cache.clear()
        self._dirty.clear()
        self._fresh.clear()
        self.end_read()

    def discard(self) -> None:
        """Forget unflushed changes (used when reopening after an error)."""
        self.committed()


def write_utxo_digest_entry(h: Any, key: bytes, value: bytes) -> None:
    prefix = bytearray()
    write_varint(len(value), prefix)
    h.update(key)
    h.update(prefix)
    h.update(value)


def compute_stats(env: Any, db: Any) -> UtxoStats:
    """Count, total amount and a deterministic digest of the coins on disk."""
    h = hashlib.sha256()
    count = 0
    total = 0
    with env.begin(db=db, buffers=True) as txn:
        for key, value in txn.cursor():
            value = bytes(value)
            write_utxo_digest_entry(h, bytes(key), value)
            total += decode_amount(value)
            count += 1
    return UtxoStats(count, total, h.hexdigest())


class BlockView:
    """A throw-away layer over the cache for one block: changes reach the cache only
    through :meth:`apply`, so an invalid block leaves the cache untouched."""

    __slots__ = ("_base", "_changes", "_new")

    def __init__(self, base: CoinsCache) -> None:
        self._base = base
        self._changes: dict[bytes, tuple[Coin, bool] | None] = {}
        self._new: set[bytes] = set()  # added here, known absent below: spend = forget

    def get(self, op: bytes) -> Coin | None:
        entry = self._changes.get(op, _MISSING)
        if entry is _MISSING:
            return self._base.get(op)
        return None if entry is None else entry[0]  # type: ignore[index]

    def have(self, op: bytes) -> bool:
        return self.get(op) is not None

    def prefetch(self, ops: list[bytes]) -> None:
        self._base.prefetch(ops)

    def spend(self, op: bytes) -> Coin | None:
        changes = self._changes
        entry = changes.get(op, _MISSING)
        if entry is _MISSING:
            coin = self._base.get(op)
        elif entry is None:
            return None
        else:
            coin = entry[0]  # type: ignore[index]
            if op in self._new:
                del changes[op]
                self._new.discard(op)
                return coin
        if coin is not None:
            changes[op] = None
        return coin

    def add(self, op: bytes, coin: Coin, possible_overwrite: bool = False) -> None:
        changes = self._changes
        if not possible_overwrite and op not in changes:
            self._new.add(op)
        changes[op] = (coin, possible_overwrite)

    def apply(self) -> None:
        base = self._base
        for op, entry in self._changes.items():
            if entry is None:
                base.spend(op)
            else:
                base.add(op, entry[0], entry[1])
        self._changes.clear()
        self._new.clear()

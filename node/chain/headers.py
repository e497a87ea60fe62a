"""Header validation and the block-header tree (Core's CBlockIndex map, compactly).

API (stable; the chainstate code builds on it):

- ``EntryStatus``: bit flags on an entry: ``HEADER_VALID``, ``HAVE_DATA``, ``HAVE_UNDO``,
  ``VALID_SCRIPTS`` (connected once), ``FAILED`` (this block broke a rule),
  ``FAILED_CHILD`` (an ancestor did); ``FAILED_MASK`` covers both.
- ``HeaderEntry``: one known header. ``hash`` (internal order), ``raw`` (the 80 header
  bytes), ``height``, ``time``, ``bits``, ``chainwork``, ``parent``, ``status``, ``seq``
  (first-seen order), plus fields the block store fills: ``tx_count``, ``file_no``,
  ``data_pos``, ``undo_pos``. Properties ``version``, ``prev_hash``, ``merkle_root``,
  ``nonce``, ``header`` (a ``BlockHeader``), ``hash_hex``; ``ancestor(height)``;
  ``to_bytes()`` / ``HeaderEntry.from_bytes(data, block_hash=None)`` for persistence (the
  parent link is restored by ``HeaderTree.from_entries``).
- ``HeaderTree(params)``: starts with the genesis entry.
  ``accept(header, now)`` validates a header (``BlockHeader`` or 80 bytes) against its parent
  and adds it, returning the entry or raising ``ConsensusError`` (``now`` in Unix seconds;
  ``None`` skips only the future-time check). Known headers return their entry
  (``duplicate-invalid`` if failed). ``get(hash)``, ``in``, ``len``, ``entries()``;
  ``best`` (most-work non-failed entry, first seen wins ties), ``best_chain_at(height)``,
  ``is_on_best_chain(entry)``, ``locator(entry=None)``, ``median_time_past(entry)``,
  ``fork_point(a, b)``, ``next_work_required(parent, time)``,
  ``mark_failed(entry)`` (descendants become FAILED_CHILD, best is re-chosen),
  ``reconsider(entry)`` (clears those flags again), ``tips()`` (leaves, for getchaintips),
  ``set_status(entry, flags)``, ``from_entries(params, entries)``; ``fork_entries`` (how
  many entries are off the best chain) and ``max_fork_entries`` (default
  ``MAX_FORK_ENTRIES``; a header that would not become best is refused with
  ``FORK_HEADERS_FULL`` when that many are stored: the P2P layer screens low-work forks,
  this bound holds whatever path a header takes).
- Free functions: ``check_proof_of_work(hash, bits, params)`` (Core's CheckProofOfWork),
  ``next_work_required(parent, time, params)`` (GetNextWorkRequired incl. min-difficulty and
  BIP94), ``median_time_past(entry, span=11)``, ``check_header_context(...)``.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from node.chain import errors as E
from node.chain.errors import ConsensusError
from node.chain.params import ChainParams
from protocols.bitcoin.block import HEADER_SIZE, BlockHeader
from protocols.bitcoin.hashes import hash_to_hex
from protocols.bitcoin.pow import bits_to_target, block_work, target_to_bits

MAX_TIMEWARP = 600  # BIP94: first block of a period may be at most this much before its parent
# Entries off the best chain (stale blocks, old branches, forks being synced) are capped:
# a new header that would not become best is refused with FORK_HEADERS_FULL beyond this.
MAX_FORK_ENTRIES = 50_000
FORK_HEADERS_FULL = "fork-headers-full"  # not a consensus failure; the header may return later
_HEADER = struct.Struct("<i32s32sIII")
_sha256 = hashlib.sha256
_U256 = (1 << 256) - 1


class EntryStatus(enum.IntFlag):
    NONE = 0
    HEADER_VALID = 1
    HAVE_DATA = 2
    HAVE_UNDO = 4
    VALID_SCRIPTS = 8
    FAILED = 16
    FAILED_CHILD = 32
    FAILED_MASK = FAILED | FAILED_CHILD


_FAILED_MASK = int(EntryStatus.FAILED_MASK)

# to_bytes layout: header(80) height(u32) status(u32) chainwork(32, big-endian)
# tx_count(u32) file_no(i32) data_pos(i64) undo_pos(i64)
_ENTRY = struct.Struct("<80sII32sIiqq")
ENTRY_SIZE = _ENTRY.size


def _invert_lowest_one(n: int) -> int:
    return n & (n - 1)


def skip_height(height: int) -> int:
    """Height the skip pointer of a block at ``height`` jumps to (Core's GetSkipHeight).

    Any ancestor is then reachable in O(log n) steps without a per-fork height array.
    """
    if height < 2:
        return 0
    if height & 1:
        return _invert_lowest_one(_invert_lowest_one(height - 1)) + 1
    return _invert_lowest_one(height)


@dataclass(slots=True, eq=False)
class HeaderEntry:
    hash: bytes
    raw: bytes
    height: int
    time: int
    bits: int
    chainwork: int
    parent: HeaderEntry | None = None
    skip: HeaderEntry | None = field(default=None, repr=False)
    status: int = int(EntryStatus.HEADER_VALID)
    seq: int = 0
    tx_count: int = 0
    file_no: int = -1
    data_pos: int = -1
    undo_pos: int = -1

    # -- header fields ---------------------------------------------------------------
    @property
    def version(self) -> int:
        return _HEADER.unpack_from(self.raw)[0]

    @property
    def prev_hash(self) -> bytes:
        return self.raw[4:36]

    @property
    def merkle_root(self) -> bytes:
        return self.raw[36:68]

    @property
    def nonce(self) -> int:
        return _HEADER.unpack_from(self.raw)[5]

    @property
    def header(self) -> BlockHeader:
        return BlockHeader.from_bytes(self.raw)

    @property
    def hash_hex(self) -> str:
        return hash_to_hex(self.hash)

    @property
    def failed(self) -> bool:
        return bool(self.status & _FAILED_MASK)

    # -- ancestry ----------------------------------------------------------------------
    def ancestor(self, height: int) -> HeaderEntry | None:
        """The ancestor at ``height`` (self for own height), via skip pointers."""
        if height > self.height or height < 0:
            return None
        walk = self
        h = self.height
        while h > height:
            hs = skip_height(h)
            hs_prev = skip_height(h - 1)
            if walk.skip is not None and (
                hs == height or (hs > height and not (hs_prev < hs - 2 and hs_prev >= height))
            ):
                walk = walk.skip
                h = hs
            else:
                walk = walk.parent  # type: ignore[assignment]
                h -= 1
        return walk

    def build_skip(self) -> None:
        if self.parent is not None:
            self.skip = self.parent.ancestor(skip_height(self.height))

    # -- persistence -------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Fixed-size record (``ENTRY_SIZE`` bytes); the hash is the natural storage key."""
        return _ENTRY.pack(
            self.raw,
            self.height,
            self.status,
            self.chainwork.to_bytes(32, "big"),
            self.tx_count,
            self.file_no,
            self.data_pos,
            self.undo_pos,
        )

    @classmethod
    def from_bytes(cls, data: bytes, block_hash: bytes | None = None) -> HeaderEntry:
        """Rebuild a detached entry (no parent link); the hash is recomputed unless given."""
        if len(data) != ENTRY_SIZE:
            raise ValueError(f"header entry record must be {ENTRY_SIZE} bytes, got {len(data)}")
        raw, height, status, work, tx_count, file_no, data_pos, undo_pos = _ENTRY.unpack(data)
        if block_hash is None:
            block_hash = _sha256(_sha256(raw).digest()).digest()
        _, _, _, time, bits, _ = _HEADER.unpack(raw)
        return cls(
            block_hash,
            raw,
            height,
            time,
            bits,
            int.from_bytes(work, "big"),
            status=status,
            tx_count=tx_count,
            file_no=file_no,
            data_pos=data_pos,
            undo_pos=undo_pos,
        )


# -- pure consensus functions ---------------------------------------------------------------


def derive_target(bits: int, params: ChainParams) -> int | None:
    """Target for ``bits`` or None when nBits is negative, zero, overflowing or above the limit."""
    decoded = bits_to_target(bits)
    if decoded.negative or decoded.overflow or decoded.target == 0:
        return None
    if decoded.target > params.pow_limit:
        return None
    return decoded.target


def check_proof_of_work(block_hash: bytes, bits: int, params: ChainParams) -> bool:
    """Core's CheckProofOfWork: valid nBits and hash (little-endian number) <= target."""
    target = derive_target(bits, params)
    return target is not None and int.from_bytes(block_hash, "little") <= target


def median_time_past(entry: HeaderEntry, span: int = 11) -> int:
    """Median of the last ``span`` block times ending at ``entry`` (Core's GetMedianTimePast)."""
    times = []
    e: HeaderEntry | None = entry
    for _ in range(span):
        if e is None:
            break
        times.append(e.time)
        e = e.parent
    times.sort()
    return times[len(times) // 2]


def calculate_next_work(last: HeaderEntry, first_time: int, params: ChainParams) -> int:
    """Retarget from the period ``[first, last]`` (Core's CalculateNextWorkRequired)."""
    if params.pow_no_retargeting:
        return last.bits
    timespan = params.pow_target_timespan
    actual = last.time - first_time
    actual = max(timespan // 4, min(actual, timespan * 4))
    if params.enforce_bip94:
        # BIP94: base on the first block of the period, which cannot use the 20-minute rule.
        base = last.ancestor(last.height - (params.difficulty_adjustment_interval - 1))
        assert base is not None
        base_bits = base.bits
    else:
        base_bits = last.bits
    target = bits_to_target(base_bits).target
    target = ((target * actual) & _U256) // timespan  # arith_uint256 wraps at 2^256
    target = min(target, params.pow_limit)
    return target_to_bits(target)


def next_work_required(parent: HeaderEntry, time: int, params: ChainParams) -> int:
    """nBits a block on ``parent`` with timestamp ``time`` must carry (GetNextWorkRequired)."""
    interval = params.difficulty_adjustment_interval
    limit_bits = params.pow_limit_bits
    if (parent.height + 1) % interval != 0:
        if params.pow_allow_min_difficulty_blocks:
            # 20-minute rule: a block more than two spacings after its parent may be min-difficulty.
            if time > parent.time + params.pow_target_spacing * 2:
                return limit_bits
            # Otherwise the bits of the last block that did not use the exception.
            e = parent
            while e.parent is not None and e.height % interval != 0 and e.bits == limit_bits:
                e = e.parent
            return e.bits
        return parent.bits
    first = parent.ancestor(parent.height - (interval - 1))
    assert first is not None
    return calculate_next_work(parent, first.time, params)


def check_header_context(
    header_version: int,
    header_time: int,
    header_bits: int,
    parent: HeaderEntry,
    params: ChainParams,
    now: int | None,
) -> str | None:
    """Core's ContextualCheckBlockHeader; returns the reject reason or None when valid."""
    height = parent.height + 1
    if header_bits != next_work_required(parent, header_time, params):
        return E.BAD_DIFFBITS
    if header_time <= median_time_past(parent, params.median_time_span):
        return E.TIME_TOO_OLD
    if (
        params.enforce_bip94
        and height % params.difficulty_adjustment_interval == 0
        and header_time < parent.time - MAX_TIMEWARP
    ):
        return E.TIME_TIMEWARP_ATTACK
    if now is not None and header_time > now + params.max_future_block_time:
        return E.TIME_TOO_NEW
    if (
        (header_version < 2 and height >= params.bip34_height)
        or (header_version < 3 and height >= params.bip66_height)
        or (header_version < 4 and height >= params.bip65_height)
    ):
        return E.bad_version(header_version)
    return None


class HeaderTree:
    """Every valid header we know, linked to its parent, with the most-work chain indexed.

    The best chain is kept as a per-height list, so ancestor lookups on it are O(1); headers
    on forks fall back to skip pointers (O(log n)).
    """

    def __init__(self, params: ChainParams, *, _genesis: HeaderEntry | None = None) -> None:
        self.params = params
        genesis = _genesis
        if genesis is None:
            raw = params.genesis_bytes[:HEADER_SIZE]
            _, _, _, time, bits, _ = _HEADER.unpack(raw)
            genesis = HeaderEntry(params.genesis_hash, raw, 0, time, bits, block_work(bits))
        self.genesis = genesis
        self._index: dict[bytes, HeaderEntry] = {genesis.hash: genesis}
        self._best_chain: list[HeaderEntry] = [genesis]
        self._seq = 1
        self._targets: dict[int, int | None] = {}
        self._work: dict[int, int] = {}
        self._bits: dict[int, int] = {}
        self.max_fork_entries = MAX_FORK_ENTRIES

    # -- lookups -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._index

    def get(self, block_hash: bytes) -> HeaderEntry | None:
        return self._index.get(block_hash)

    def entries(self) -> Iterator[HeaderEntry]:
        return iter(self._index.values())

    @property
    def best(self) -> HeaderEntry:
        """Tip of the most-work chain of non-failed headers."""
        return self._best_chain[-1]

    @property
    def height(self) -> int:
        return len(self._best_chain) - 1

    @property
    def fork_entries(self) -> int:
        """Entries not on the best chain."""
        return len(self._index) - len(self._best_chain)

    def best_chain_at(self, height: int) -> HeaderEntry | None:
        if 0 <= height < len(self._best_chain):
            return self._best_chain[height]
        return None

    def is_on_best_chain(self, entry: HeaderEntry) -> bool:
        chain = self._best_chain
        return entry.height < len(chain) and chain[entry.height] is entry

    def ancestor(self, entry: HeaderEntry, height: int) -> HeaderEntry | None:
        if self.is_on_best_chain(entry):
            return self._best_chain[height] if 0 <= height <= entry.height else None
        return entry.ancestor(height)

    def median_time_past(self, entry: HeaderEntry) -> int:
        return median_time_past(entry, self.params.median_time_span)

    def next_work_required(self, parent: HeaderEntry, time: int) -> int:
        return next_work_required(parent, time, self.params)

    def fork_point(self, a: HeaderEntry, b: HeaderEntry) -> HeaderEntry:
        """Last common ancestor of two entries (Core's LastCommonAncestor)."""
        if a.height > b.height:
            a = a.ancestor(b.height)  # type: ignore[assignment]
        elif b.height > a.height:
            b = b.ancestor(a.height)  # type: ignore[assignment]
        while a is not b:
            a, b = a.parent, b.parent  # type: ignore[assignment]
        return a

    def locator(self, entry: HeaderEntry | None = None) -> list[bytes]:
        """Block locator hashes from ``entry`` (default best) back to genesis.

        Ten most recent one by one, then exponentially sparser, always ending at genesis.
        """
        e = self.best if entry is None else entry
        hashes: list[bytes] = []
        step = 1
        height = e.height
        while True:
            node = self.ancestor(e, height)
            assert node is not None
            hashes.append(node.hash)
            if height == 0:
                break
            height = max(height - step, 0)
            if len(hashes) > 10:
                step *= 2
        return hashes

    # -- acceptance --------------------------------------------------------------------
    def _target(self, bits: int) -> int | None:
        try:
            return self._targets[bits]
        except KeyError:
            if len(self._targets) > 4096:  # junk headers must not grow the cache forever
                self._targets.clear()
            t = self._targets[bits] = derive_target(bits, self.params)
            return t

    def _block_work(self, bits: int) -> int:
        try:
            return self._work[bits]
        except KeyError:
            w = self._work[bits] = block_work(bits)
            return w

    def accept(self, header: BlockHeader | bytes | bytearray, now: int | None) -> HeaderEntry:
        """Validate ``header`` against its parent and add it (AcceptBlockHeader).

        Raises ConsensusError with Core's reason: ``high-hash``, ``prev-blk-not-found``,
        ``bad-prevblk``, ``bad-diffbits``, ``time-too-old``, ``time-timewarp-attack``,
        ``time-too-new``, ``bad-version(0x…)``, ``duplicate-invalid``, ``fork-headers-full``.
        """
        raw = header.serialize() if isinstance(header, BlockHeader) else bytes(header)
        if len(raw) != HEADER_SIZE:
            raise ValueError(f"block header must be 80 bytes, got {len(raw)}")
        h = _sha256(_sha256(raw).digest()).digest()
        known = self._index.get(h)
        if known is not None:
            if known.status & _FAILED_MASK:
                raise ConsensusError(
                    E.DUPLICATE_INVALID,
                    "header is known invalid",
                    height=known.height,
                    block_hash=h,
                )
            return known
        version, prev, _, time, bits, _ = _HEADER.unpack(raw)
        parent = self._index.get(prev)
        height = parent.height + 1 if parent is not None else None
        target = self._target(bits)
        if target is None or int.from_bytes(h, "little") > target:
            raise ConsensusError(E.HIGH_HASH, "proof of work failed", height=height, block_hash=h)
        if parent is None:
            raise ConsensusError(
                E.PREV_BLK_NOT_FOUND, f"unknown parent {hash_to_hex(prev)}", block_hash=h
            )
        if parent.status & _FAILED_MASK:
            raise ConsensusError(E.BAD_PREVBLK, "parent is invalid", height=height, block_hash=h)
        reason = check_header_context(version, time, bits, parent, self.params, now)
        if reason is not None:
            raise ConsensusError(reason, height=height, block_hash=h)
        bits = self._bits.setdefault(bits, bits)  # one int object per distinct nBits
        work = parent.chainwork + self._block_work(bits)
        if work <= self.best.chainwork and self.fork_entries >= self.max_fork_entries:
            raise ConsensusError(
                FORK_HEADERS_FULL,
                f"{self.fork_entries} headers off the best chain already stored",
                height=height,
                block_hash=h,
            )
        entry = HeaderEntry(h, raw, height, time, bits, work)
        entry.parent = parent
        entry.skip = parent.ancestor(skip_height(height))
        entry.seq = self._seq
        self._seq += 1
        self._index[h] = entry
        if entry.chainwork > self.best.chainwork:
            self._set_best(entry)
        return entry

    def _set_best(self, tip: HeaderEntry) -> None:
        chain = self._best_chain
        del chain[tip.height + 1 :]
        e: HeaderEntry | None = tip
        while e is not None and not (e.height < len(chain) and chain[e.height] is e):
            e = e.parent
        start = 0 if e is None else e.height + 1
        del chain[start:]
        path = []
        e = tip
        while e is not None and e.height >= start:
            path.append(e)
            e = e.parent
        chain.extend(reversed(path))

    # -- status ------------------------------------------------------------------------
    def set_status(self, entry: HeaderEntry, flags: int) -> None:
        entry.status |= int(flags)

    def mark_failed(self, entry: HeaderEntry) -> list[HeaderEntry]:
        """Mark ``entry`` FAILED and all its descendants FAILED_CHILD; returns the descendants.

        The best header is re-chosen among the remaining valid entries.
        """
        if entry.height == 0:
            raise ValueError("the genesis block cannot be marked failed")
        entry.status |= int(EntryStatus.FAILED)
        descendants = []
        h = entry.height
        for e in self._index.values():
            if e.height > h and e.ancestor(h) is entry:
                e.status |= int(EntryStatus.FAILED_CHILD)
                descendants.append(e)
        if self.best is entry or self.best in descendants or self.best.failed:
            self._choose_best()
        return descendants

    def reconsider(self, entry: HeaderEntry) -> None:
        """Clear failure flags on ``entry``, its ancestors and descendants (ReconsiderBlock)."""
        clear = ~_FAILED_MASK
        h = entry.height
        for e in self._index.values():
            if e.status & _FAILED_MASK and (
                (e.height >= h and e.ancestor(h) is entry)
                or (e.height < h and entry.ancestor(e.height) is e)
            ):
                e.status &= clear
        self._choose_best()

    def tips(self) -> list[HeaderEntry]:
        """Entries without children (for getchaintips), best first then by height."""
        parents = {id(e.parent) for e in self._index.values() if e.parent is not None}
        leaves = [e for e in self._index.values() if id(e) not in parents]
        best = self.best
        return sorted(leaves, key=lambda e: (e is not best, -e.height, e.seq))

    def _choose_best(self) -> None:
        best = self.genesis
        for e in self._index.values():
            if e.status & _FAILED_MASK:
                continue
            if e.chainwork > best.chainwork or (e.chainwork == best.chainwork and e.seq < best.seq):
                best = e
        self._best_chain = []
        self._set_best(best)

    # -- persistence -------------------------------------------------------------------
    @classmethod
    def from_entries(cls, params: ChainParams, entries: Iterable[HeaderEntry]) -> HeaderTree:
        """Rebuild a tree from persisted entries (any order); links parents and skip pointers.

        Entries whose parent is missing are dropped (a torn write); genesis must match params.
        """
        by_hash = {e.hash: e for e in entries}
        genesis = by_hash.get(params.genesis_hash)
        if genesis is None:
            raw = params.genesis_bytes[:HEADER_SIZE]
            _, _, _, time, bits, _ = _HEADER.unpack(raw)
            genesis = HeaderEntry(params.genesis_hash, raw, 0, time, bits, block_work(bits))
        tree = cls(params, _genesis=genesis)
        ordered = sorted(by_hash.values(), key=lambda e: e.height)
        index = tree._index
        for e in ordered:
            if e is genesis:
                continue
            parent = index.get(e.prev_hash)
            if parent is None or parent.height + 1 != e.height:
                continue
            e.parent = parent
            e.chainwork = parent.chainwork + block_work(e.bits)
            e.skip = parent.ancestor(skip_height(e.height))
            e.seq = tree._seq
            tree._seq += 1
            index[e.hash] = e
        tree._choose_best()
        return tree

"""Low-work header defence: a peer's headers are stored only once their chain has enough work.

In the spirit of Bitcoin Core's HeadersSyncState. Headers that fork from our tree at
``start`` are first *presynced*: we check continuity, proof of work and the permitted
difficulty transitions, add up their work and keep only a running total, the last hash
and one salted bit per ``COMMITMENT_PERIOD`` headers. When the total reaches the
threshold (our tip's work, at least the network's minimum chain work) we ask the same
peer again from ``start`` (*redownload*): each header must match the committed bits, and
headers are released to the tree once ``REDOWNLOAD_BUFFER`` more commitment-checked
headers follow them, or all at once when the redownloaded chain reaches the threshold.

So a peer that feeds a cheap low-work chain costs us a constant amount of memory
(plus one byte per 600 headers), never a growing header tree. The class is pure: no
sockets, no clocks; the P2P layer feeds it batches and acts on the result.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections import deque
from dataclasses import dataclass, field

from node.chain.headers import HeaderEntry, derive_target
from node.chain.params import ChainParams
from protocols.bitcoin.pow import bits_to_target, block_work, target_to_bits

COMMITMENT_PERIOD = 600  # one committed bit per this many presynced headers
REDOWNLOAD_BUFFER = 15_000  # ~25 commitments behind a header before it is released
_HEADER = struct.Struct("<i32s32sIII")
_sha256 = hashlib.sha256


class PresyncError(Exception):
    """The peer's headers broke presync rules; the sync with that peer is abandoned."""


class Phase(enum.Enum):
    PRESYNC = "presync"
    REDOWNLOAD = "redownload"
    DONE = "done"


@dataclass(slots=True)
class PresyncStep:
    """What to do after a batch: store ``release`` (in order), then ask for headers
    after ``request_from`` (None: ask nothing). ``abandoned``: the chain ended below the
    threshold (an honest stale fork or spam), nothing of it is kept."""

    release: list[bytes] = field(default_factory=list)
    request_from: bytes | None = None
    abandoned: bool = False


def permitted_difficulty_transition(
    params: ChainParams, height: int, old_bits: int, new_bits: int
) -> bool:
    """Whether ``new_bits`` at ``height`` can follow ``old_bits`` (Core's PermittedDifficultyTransition).

    Without ancestors we cannot compute the exact retarget; the bound (a factor of four,
    rounded through the compact form) is what makes a cheap chain cost real work.
    """
    if params.pow_allow_min_difficulty_blocks:
        return True
    if height % params.difficulty_adjustment_interval != 0:
        return old_bits == new_bits
    old = bits_to_target(old_bits).target
    easiest = bits_to_target(target_to_bits(min(old * 4, params.pow_limit))).target
    hardest = bits_to_target(target_to_bits(old // 4)).target
    new = bits_to_target(new_bits).target
    return hardest <= new <= easiest


class HeadersPresync:
    """Per-peer state for one low-work header sync that started at ``start`` (in our tree)."""

    def __init__(
        self,
        start: HeaderEntry,
        threshold: int,
        params: ChainParams,
        *,
        salt: bytes,
        offset: int,
        period: int = COMMITMENT_PERIOD,
        buffer: int = REDOWNLOAD_BUFFER,
    ) -> None:
        self.params = params
        self.start_hash = start.hash
        self.start_height = start.height
        self.threshold = threshold
        self.phase = Phase.PRESYNC
        self._salt = salt
        self._period = period
        self._offset = offset % period
        self._buffer_max = buffer
        # presync
        self.presync_count = 0
        self.presync_work = start.chainwork
        self._last_hash = start.hash
        self._last_bits = start.bits
        self._commitments = bytearray()
        # redownload
        self._rd_height = start.height
        self._rd_work = start.chainwork
        self._rd_last_hash = start.hash
        self._rd_last_bits = start.bits
        self._rd_commit_index = 0
        self._buffer: deque[bytes] = deque()

    @property
    def presync_height(self) -> int:
        return self.start_height + self.presync_count

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def continues(self, raws: list[bytes]) -> bool:
        """Whether a batch is the next part of this sync (an empty one ends it)."""
        if not raws:
            return True
        last = self._last_hash if self.phase is Phase.PRESYNC else self._rd_last_hash
        return raws[0][4:36] == last

    def _commit_bit(self, block_hash: bytes) -> int:
        return _sha256(self._salt + block_hash).digest()[0] & 1

    def _check(self, raw: bytes, prev_expected: bytes, old_bits: int, height: int) -> tuple:
        if len(raw) != 80:
            raise PresyncError("bad header length")
        block_hash = _sha256(_sha256(raw).digest()).digest()
        _, prev, _, _, bits, _ = _HEADER.unpack(raw)
        if prev != prev_expected:
            raise PresyncError("non-continuous headers")
        target = derive_target(bits, self.params)
        if target is None or int.from_bytes(block_hash, "little") > target:
            raise PresyncError("high-hash")
        if not permitted_difficulty_transition(self.params, height, old_bits, bits):
            raise PresyncError("bad-diffbits")
        return block_hash, bits

    def feed(self, raws: list[bytes], full: bool) -> PresyncStep:
        """Take one ``headers`` batch (``full``: it had the maximum count, more may follow)."""
        if self.phase is Phase.PRESYNC:
            return self._feed_presync(raws, full)
        if self.phase is Phase.REDOWNLOAD:
            return self._feed_redownload(raws, full)
        raise PresyncError("headers after the sync finished")

    def _feed_presync(self, raws: list[bytes], full: bool) -> PresyncStep:
        for raw in raws:
            height = self.presync_height + 1
            block_hash, bits = self._check(raw, self._last_hash, self._last_bits, height)
            self.presync_count += 1
            self.presync_work += block_work(bits)
            if height % self._period == self._offset:
                self._commitments.append(self._commit_bit(block_hash))
            self._last_hash = block_hash
            self._last_bits = bits
            if self.presync_work >= self.threshold:
                self.phase = Phase.REDOWNLOAD
                return PresyncStep(request_from=self.start_hash)
        if not full:
            self.phase = Phase.DONE
            return PresyncStep(abandoned=True)
        return PresyncStep(request_from=self._last_hash)

    def _feed_redownload(self, raws: list[bytes], full: bool) -> PresyncStep:
        step = PresyncStep()
        for i, raw in enumerate(raws):
            height = self._rd_height + 1
            block_hash, bits = self._check(raw, self._rd_last_hash, self._rd_last_bits, height)
            if height > self.presync_height:
                raise PresyncError("redownloaded chain is longer than the presynced one")
            if height % self._period == self._offset:
                if self._commitments[self._rd_commit_index] != self._commit_bit(block_hash):
                    raise PresyncError("redownloaded headers do not match the presynced ones")
                self._rd_commit_index += 1
            self._rd_height = height
            self._rd_work += block_work(bits)
            self._rd_last_hash = block_hash
            self._rd_last_bits = bits
            self._buffer.append(raw)
            if self._rd_work >= self.threshold:
                # Enough work: everything buffered and the rest of this batch is wanted.
                step.release.extend(self._buffer)
                step.release.extend(raws[i + 1 :])
                self._buffer.clear()
                self.phase = Phase.DONE
                if full:
                    step.request_from = _sha256(_sha256(raws[-1]).digest()).digest()
                return step
        while len(self._buffer) > self._buffer_max:
            step.release.append(self._buffer.popleft())
        if not full:
            raise PresyncError("redownload ended below the work threshold")
        step.request_from = self._rd_last_hash
        return step


def low_work_cap(start: HeaderEntry, threshold: int, slack: int) -> int:
    """How many low-work headers a peer may send before we drop it.

    Enough for an honest chain to reach ``threshold`` from ``start`` even at a quarter of
    the difficulty at ``start`` (on regtest: 4x the blocks since the fork), plus ``slack``.
    """
    per_block = max(block_work(start.bits), 1)
    needed = max(threshold - start.chainwork, 0)
    return slack + 4 * (-(-needed // per_block))

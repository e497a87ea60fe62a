"""Share validation in SRI's order, and the per-channel state it needs.

Order: stale -> job id -> extranonce size -> merkle -> ntime -> version mask -> network target
(a block: built and returned, and still counted as a share) -> job target -> duplicate.
Each failure is one `ShareError` code sent back at once; acceptances are acknowledged in
batches by the server.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from appliance.stratum_v2.errors import ShareError
from appliance.stratum_v2.jobs import VERSION_ROLLING_MASK, ChannelJobs, ChannelKind, Job
from appliance.stratum_v2.vardiff import Vardiff, difficulty
from protocols.bitcoin.block import Block, BlockHeader
from protocols.stratum_v1.work import DIFF1_TARGET
from protocols.sv2.messages import SubmitSharesExtended, SubmitSharesStandard

__all__ = [
    "Channel",
    "ExtendedShare",
    "ShareResult",
    "WorkerStats",
    "header_bytes",
    "validate_share",
]

_HEADER = struct.Struct("<I32s32sIII")  # one pack builds the whole 80-byte header
_sha256 = hashlib.sha256
_EXTENDED = ChannelKind.EXTENDED


def header_bytes(
    version: int, prev_hash: bytes, merkle_root: bytes, ntime: int, nbits: int, nonce: int
) -> bytes:
    if len(prev_hash) != 32 or len(merkle_root) != 32:  # "32s" would pad or cut silently
        raise ValueError("prev_hash and merkle_root are 32 bytes")
    return _HEADER.pack(version, prev_hash, merkle_root, ntime, nbits, nonce)


def _credited(channel: Channel, target: int) -> float:
    """difficulty(target), remembered per channel: the target rarely changes."""
    cached = channel.credit
    if cached is not None and cached[0] == target:
        return cached[1]
    value = difficulty(target)
    channel.credit = (target, value)
    return value


@dataclass(slots=True)
class WorkerStats:
    """Per-worker (channel user_identity) counters for the status APIs."""

    user_identity: str
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    shares_sum: float = 0.0  # sum of accepted share difficulties
    blocks_found: int = 0
    last_share_time: float | None = None
    best_difficulty: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "user_identity": self.user_identity,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "shares_sum": self.shares_sum,
            "blocks_found": self.blocks_found,
            "last_share_time": self.last_share_time,
            "best_difficulty": self.best_difficulty,
        }


@dataclass(slots=True)
class Channel:
    """One mining channel: its jobs, target (vardiff), duplicate memory and statistics."""

    channel_id: int
    user_identity: str
    jobs: ChannelJobs
    vardiff: Vardiff
    stats: WorkerStats
    version_rolling: bool = True
    seen: dict[int, set[tuple[int, int, int, bytes]]] = field(default_factory=dict)
    credit: tuple[int, float] | None = None  # (target, its difficulty), see `_credited`

    @property
    def kind(self) -> ChannelKind:
        return self.jobs.kind

    @property
    def target(self) -> int:
        return self.vardiff.target

    def forget_retired(self) -> None:
        """Drop duplicate memory of jobs no longer live."""
        live = self.jobs.live
        for job_id in [j for j in self.seen if j not in live]:
            del self.seen[job_id]


class ExtendedShare:
    """An extended-channel share as `validate_share` reads it, for SV1 submits: the fields
    of SubmitSharesExtended without building that frozen wire message once per share."""

    __slots__ = (
        "channel_id",
        "extranonce",
        "job_id",
        "nonce",
        "ntime",
        "sequence_number",
        "version",
    )

    def __init__(
        self,
        channel_id: int,
        sequence_number: int,
        job_id: int,
        nonce: int,
        ntime: int,
        version: int,
        extranonce: bytes,
    ) -> None:
        self.channel_id = channel_id
        self.sequence_number = sequence_number
        self.job_id = job_id
        self.nonce = nonce
        self.ntime = ntime
        self.version = version
        self.extranonce = extranonce


@dataclass(slots=True)  # not frozen: a frozen init costs a setattr call per field
class ShareResult:
    error: ShareError | None
    hash_value: int = 0
    difficulty: float = 0.0  # credited: the channel target's difficulty
    hash_difficulty: float = 0.0  # what the hash itself reached
    block: Block | None = None
    is_block: bool = False
    job: Job | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


def validate_share(
    channel: Channel,
    share: SubmitSharesStandard | SubmitSharesExtended | ExtendedShare,
    target: int | None = None,
) -> ShareResult:
    """Validate one share against `channel`; updates duplicate memory but not statistics.

    `target` overrides the channel's current one (SV1 applies a new difficulty from the next
    job on, so a share is judged by the target in force when its job was sent).
    """
    # The hot path of the share server: lookups and the header pack are inlined.
    share_target = channel.vardiff.target if target is None else target
    jobs = channel.jobs
    job_id = share.job_id
    if job_id in jobs.stale:
        return ShareResult(ShareError.STALE_SHARE)
    job = jobs.live.get(job_id)
    prev = jobs.prevhash
    if job is None or prev is None:
        return ShareResult(ShareError.INVALID_JOB_ID)
    work = job.work
    if type(share) is SubmitSharesStandard:
        merkle_root = job.merkle_root
        if merkle_root is None:
            return ShareResult(ShareError.INVALID_SHARE)
        extranonce = b""
        full_extranonce = jobs.extranonce_prefix
    else:
        if jobs.kind is not _EXTENDED:
            return ShareResult(ShareError.INVALID_SHARE)
        extranonce = share.extranonce
        if type(extranonce) is not bytes:
            extranonce = bytes(extranonce)
        full_extranonce = jobs.extranonce_prefix + extranonce
        if len(full_extranonce) != work.extranonce_size:
            return ShareResult(ShareError.BAD_EXTRANONCE_SIZE)
        merkle_root = work.merkle_root(full_extranonce)
    version = share.version
    ntime = share.ntime
    if ntime < prev.min_ntime:
        return ShareResult(ShareError.INVALID_TIMESTAMP)
    if version != job.version:
        mask = VERSION_ROLLING_MASK if channel.version_rolling else 0
        if (version & ~mask) != (job.version & ~mask):
            return ShareResult(ShareError.VERSION_ROLLING_NOT_ALLOWED)
    nonce = share.nonce
    # prev_hash and merkle_root are our own 32-byte values (so "32s" neither pads nor cuts).
    raw = _HEADER.pack(version, prev.prev_hash, merkle_root, ntime, prev.nbits, nonce)
    value = int.from_bytes(_sha256(_sha256(raw).digest()).digest(), "little")
    block = None
    is_block = value <= work.network_target
    if is_block:
        header = BlockHeader(version, prev.prev_hash, merkle_root, ntime, prev.nbits, nonce)
        block = work.block(full_extranonce, header)
    elif value > share_target:
        return ShareResult(ShareError.DIFFICULTY_TOO_LOW, value, job=job)
    key = (nonce, ntime, version, extranonce)
    seen = channel.seen.get(job_id)
    if seen is None:
        seen = channel.seen[job_id] = set()
    elif key in seen:
        return ShareResult(ShareError.DUPLICATE_SHARE, value, job=job)
    seen.add(key)
    credited = _credited(channel, share_target)
    return ShareResult(None, value, credited, DIFF1_TARGET / (value or 1), block, is_block, job)

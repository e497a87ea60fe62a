"""Share validation for a Stratum V1 server: the jobs it sent, and the checks on a submit.

Kept per connection (or per extranonce1): the duplicate set is only meaningful for one
extranonce1. Order of checks follows what pools do: unknown/stale job → ntime → version
mask → hash (block?) → duplicate → difficulty.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from protocols.stratum_v1.errors import ErrorCode
from protocols.stratum_v1.events import Notify, Submit
from protocols.stratum_v1.work import (
    apply_version_bits,
    bits_to_target,
    build_coinbase,
    build_header,
    hash_to_int,
    merkle_root_from_branch,
    sha256d,
    target_to_difficulty,
    version_bits_allowed,
)

MAX_NTIME_AHEAD = 7200  # seconds a share's ntime may run ahead of the job's


@dataclass(frozen=True, slots=True)
class ShareResult:
    """Outcome of one submit; ``error`` is ``None`` for an accepted share."""

    error: ErrorCode | None
    message: str = ""
    header: bytes | None = None
    hash: bytes | None = None
    difficulty: float = 0.0
    is_block: bool = False


def share_header(notify: Notify, extranonce1: bytes, submit: Submit, version_mask: int) -> bytes:
    """The 80-byte header a submit claims to have hashed."""
    coinbase = build_coinbase(notify.coinb1, extranonce1, submit.extranonce2, notify.coinb2)
    root = merkle_root_from_branch(sha256d(coinbase), notify.merkle_branch)
    version = apply_version_bits(notify.version, submit.version_bits, version_mask)
    return build_header(version, notify.prevhash, root, submit.ntime, notify.nbits, submit.nonce)


@dataclass(slots=True)
class JobBook:
    """The jobs a server has sent on one connection, plus the shares already seen."""

    max_jobs: int = 16
    _jobs: OrderedDict[str, Notify] = field(default_factory=OrderedDict)
    _seen: dict[str, set[tuple[bytes, int, int, int]]] = field(default_factory=dict)

    def add(self, notify: Notify) -> None:
        """Record a job as sent; ``clean_jobs`` makes every older job stale."""
        if notify.clean_jobs:
            self._jobs.clear()
            self._seen.clear()
        self._jobs[notify.job_id] = notify
        self._jobs.move_to_end(notify.job_id)
        self._seen[notify.job_id] = set()
        while len(self._jobs) > self.max_jobs:
            old, _ = self._jobs.popitem(last=False)
            self._seen.pop(old, None)

    def get(self, job_id: str) -> Notify | None:
        return self._jobs.get(job_id)

    def __len__(self) -> int:
        return len(self._jobs)

    def validate(
        self,
        submit: Submit,
        extranonce1: bytes,
        share_target: int,
        version_mask: int | None = None,
    ) -> ShareResult:
        """Check a submit against its job; an accepted share is remembered for duplicates."""
        job = self._jobs.get(submit.job_id)
        if job is None:
            return ShareResult(ErrorCode.JOB_NOT_FOUND, "Job not found")
        if not job.ntime <= submit.ntime <= job.ntime + MAX_NTIME_AHEAD:
            return ShareResult(ErrorCode.OTHER, "ntime out of range")
        mask = version_mask or 0
        if submit.version_bits is not None and not version_bits_allowed(
            submit.version_bits, mask, job.version
        ):
            return ShareResult(ErrorCode.OTHER, "version bits outside the negotiated mask")
        header = share_header(job, extranonce1, submit, mask)
        digest = sha256d(header)
        value = hash_to_int(digest)
        difficulty = target_to_difficulty(value)
        is_block = value <= bits_to_target(job.nbits)
        key = (submit.extranonce2, submit.ntime, submit.nonce, int.from_bytes(header[:4], "little"))
        seen = self._seen[submit.job_id]
        if key in seen:
            return ShareResult(
                ErrorCode.DUPLICATE_SHARE, "Duplicate share", header, digest, difficulty, is_block
            )
        if value > share_target and not is_block:
            return ShareResult(
                ErrorCode.LOW_DIFFICULTY_SHARE,
                "Low difficulty share",
                header,
                digest,
                difficulty,
                False,
            )
        seen.add(key)
        return ShareResult(None, "", header, digest, difficulty, is_block)

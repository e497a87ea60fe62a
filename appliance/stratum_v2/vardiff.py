"""Per-channel variable difficulty: keep each channel near a target number of shares a minute.

Time is passed in (seconds, any monotonic origin). The initial target comes from the
channel's nominal hash rate (OpenChannel): t = (2^256 - h*s) / (h*s + 1), s = 60 / spm, i.e.
the target at which a miner of h H/s finds one share every s seconds on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["MAX_TARGET", "Vardiff", "hashrate_from_shares", "target_from_hashrate"]

from protocols.stratum_v1.work import DIFF1_TARGET, MAX_TARGET


def target_from_hashrate(hashrate: float, shares_per_minute: float) -> int:
    """Target giving `shares_per_minute` on average at `hashrate` H/s (max target if unknown)."""
    if not hashrate > 0 or not shares_per_minute > 0:
        return MAX_TARGET
    if not math.isfinite(hashrate):
        return 1
    hs = int(hashrate * 60.0 / shares_per_minute)
    if hs <= 0:
        return MAX_TARGET
    return max(1, ((1 << 256) - hs) // (hs + 1))


def hashes_per_share(target: int) -> float:
    """Expected hashes to find one hash <= target."""
    return (1 << 256) / (target + 1)


def hashrate_from_shares(shares: int, target: int, seconds: float) -> float:
    if seconds <= 0:
        return 0.0
    return shares * hashes_per_share(target) / seconds


def difficulty(target: int) -> float:
    return DIFF1_TARGET / max(target, 1)


@dataclass(slots=True)
class Vardiff:
    """Retargets from the shares seen since the last change.

    A retarget happens when `interval` seconds have passed (or early, after `burst` times the
    expected shares) and the measured rate is outside [1/tolerance, tolerance] of the aim.
    A channel that goes silent for `interval` halves its difficulty, so a miner that was given
    too hard a target is not stuck forever.
    """

    shares_per_minute: float
    target: int
    max_target: int = MAX_TARGET
    min_target: int = 1
    interval: float = 60.0
    tolerance: float = 1.5
    burst: float = 4.0
    window_start: float = 0.0
    shares: int = 0
    estimated_hashrate: float = field(default=0.0)

    @classmethod
    def start(
        cls,
        nominal_hashrate: float,
        shares_per_minute: float,
        now: float,
        *,
        max_target: int = MAX_TARGET,
        interval: float = 60.0,
    ) -> Vardiff:
        target = min(target_from_hashrate(nominal_hashrate, shares_per_minute), max_target)
        return cls(
            shares_per_minute,
            target,
            max_target=max_target,
            interval=interval,
            window_start=now,
            estimated_hashrate=max(nominal_hashrate, 0.0),
        )

    def on_share(self, now: float) -> int | None:
        """Count an accepted share; returns the new target if it changed."""
        self.shares += 1
        expected = self.shares_per_minute * self.interval / 60.0
        if self.shares >= self.burst * expected and now > self.window_start:
            return self._retarget(now)
        return self.poll(now)

    def poll(self, now: float) -> int | None:
        """Call periodically; returns the new target if it changed."""
        if now - self.window_start < self.interval:
            return None
        return self._retarget(now)

    def _retarget(self, now: float) -> int | None:
        elapsed = now - self.window_start
        if elapsed <= 0:
            return None
        rate = self.shares * 60.0 / elapsed
        aim = self.shares_per_minute
        old = self.target
        if self.shares == 0:
            new = min(self.max_target, old * 2 + 1)  # silent: make it twice as easy
        elif aim / self.tolerance <= rate <= aim * self.tolerance:
            new = old
        else:
            self.estimated_hashrate = hashrate_from_shares(self.shares, old, elapsed)
            new = target_from_hashrate(self.estimated_hashrate, aim)
        new = max(self.min_target, min(self.max_target, new))
        self.window_start = now
        self.shares = 0
        if new == old:
            return None
        self.target = new
        return new

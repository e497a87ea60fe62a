"""Sliding-window rates (1 min / 10 min / 1 h) fed by timestamped amounts.

Amounts are kept in buckets of window/60 so memory stays bounded however many nonces a
chain produces; the rate over a window is the bucketed sum divided by the window, or by
the time since counting started when that is shorter (so a fresh miner is not
under-reported for its first hour). Time always comes from the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOWS_S: tuple[int, ...] = (60, 600, 3600)
BUCKETS_PER_WINDOW = 60


@dataclass(slots=True)
class _Window:
    length: float
    bucket: float
    buckets: deque[list[float]] = field(default_factory=deque)  # [bucket_start, amount]
    total: float = 0.0

    def add(self, t: float, amount: float) -> None:
        start = t - (t % self.bucket)
        if self.buckets and self.buckets[-1][0] == start:
            self.buckets[-1][1] += amount
        else:
            self.buckets.append([start, amount])
        self.total += amount

    def prune(self, now: float) -> None:
        horizon = now - self.length
        while self.buckets and self.buckets[0][0] + self.bucket <= horizon:
            self.total -= self.buckets.popleft()[1]
        if not self.buckets:
            self.total = 0.0


class RateWindows:
    """Rates of an accumulating quantity (hashes, errors) over several windows."""

    __slots__ = ("_windows", "started_at", "total")

    def __init__(self, started_at: float, windows: tuple[int, ...] = WINDOWS_S) -> None:
        self.started_at = started_at
        self.total = 0.0
        self._windows = {w: _Window(float(w), w / BUCKETS_PER_WINDOW) for w in windows}

    def add(self, t: float, amount: float) -> None:
        self.total += amount
        for w in self._windows.values():
            w.add(t, amount)

    def rate(self, now: float, window: int = 60) -> float:
        """Amount per second over the last ``window`` seconds."""
        w = self._windows[window]
        w.prune(now)
        span = min(float(window), now - self.started_at)
        if span <= 0:
            return 0.0
        return w.total / span

    def rates(self, now: float) -> dict[int, float]:
        return {w: self.rate(now, w) for w in self._windows}

    def restart(self, now: float) -> None:
        self.started_at = now
        for w in self._windows.values():
            w.buckets.clear()
            w.total = 0.0

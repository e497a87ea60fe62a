"""When to hand the chips fresh work.

A chain exhausts one job after 2^32 nonces times the versions it may roll, at its
hashrate. Sending the next job at half that time keeps every chip busy without flooding
the UART; a new block bypasses the schedule entirely (see ``AsicDriver.new_block``).
"""

from __future__ import annotations

from collections.abc import Callable

NONCE_SPACE = 1 << 32
SAFETY = 0.5
UART_BITS_PER_BYTE = 10  # 8N1


def exhaustion_time(hashrate_hs: float, versions: int) -> float:
    """Seconds until a chain at ``hashrate_hs`` has tried every nonce of every version."""
    return NONCE_SPACE * max(1, versions) / max(hashrate_hs, 1.0)


class JobScheduler:
    """Paces job sends; time comes from the injected ``clock``."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        min_interval: float = 0.005,
        max_interval: float = 2.0,
    ) -> None:
        self.clock = clock
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.interval = max_interval
        self.last_sent: float | None = None

    def configure(
        self, hashrate_hs: float, versions: int, job_frame_bytes: int = 0, baud: int = 0
    ) -> float:
        """Derive the interval from the chain's speed, its rolling and the UART time."""
        floor = self.min_interval
        if baud:
            floor = max(floor, 2 * job_frame_bytes * UART_BITS_PER_BYTE / baud)
        ideal = exhaustion_time(hashrate_hs, versions) * SAFETY
        self.interval = min(self.max_interval, max(floor, ideal))
        return self.interval

    def due(self, now: float | None = None) -> bool:
        now = self.clock() if now is None else now
        return self.last_sent is None or now - self.last_sent >= self.interval

    def time_until_due(self, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        if self.last_sent is None:
            return 0.0
        return max(0.0, self.last_sent + self.interval - now)

    def mark_sent(self, now: float | None = None) -> None:
        self.last_sent = self.clock() if now is None else now

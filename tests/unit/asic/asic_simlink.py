"""Test plumbing: fake time, and the project's simulated chip chain behind the transport API.

``SimChainTransport`` puts ``drivers.sim.chips.SimChain`` (the sans-IO chip simulator) on
the far side of a :class:`~drivers.transport.base.Transport`. Reads advance a fake clock,
so a test runs the chain's real hashing for exactly the simulated time it asks for. Like
a real UART, bytes are garbled whenever host and chain baud rates disagree by more than
3 %, which is what makes the driver's baud switch observable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.sim.chips import SimChain
from drivers.transport.base import TransportClosed


@dataclass(slots=True)
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        self.now += dt

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.now += dt


def _garble(data: bytes) -> bytes:
    return bytes(b ^ 0xA5 for b in data)


class SimChainTransport:
    """Host-side transport whose wire ends in a SimChain; time is the fake clock."""

    def __init__(self, chain: SimChain, clock: FakeClock, baud: int = 115_200) -> None:
        self.chain = chain
        self.clock = clock
        self.baud = baud
        self.writes: list[bytes] = []
        self.bauds: list[int] = []
        self.resets = 0
        self.garbled_bytes = 0
        self.closed = False
        chain.advance(clock())

    def _in_step(self) -> bool:
        return abs(self.chain.baud - self.baud) <= 0.03 * self.baud

    def write(self, data: bytes) -> None:
        if self.closed:
            raise TransportClosed("closed")
        self.writes.append(bytes(data))
        self.chain.advance(self.clock())  # time passed since the last call counts first
        if self._in_step():
            self.chain.feed(data)
        else:
            self.garbled_bytes += len(data)
            self.chain.feed(_garble(data))

    def read(self, timeout: float) -> bytes:
        if self.closed:
            raise TransportClosed("closed")
        self.chain.advance(self.clock())
        out = self.chain.take_output()
        if not out and timeout > 0:
            self.clock.advance(timeout)
            self.chain.advance(self.clock())
            out = self.chain.take_output()
        if out and not self._in_step():
            self.garbled_bytes += len(out)
            out = _garble(out)
        return out

    def set_baud(self, baud: int) -> None:
        self.baud = baud
        self.bauds.append(baud)

    def reset_chips(self) -> None:
        self.resets += 1
        self.chain.reset()

    def close(self) -> None:
        self.closed = True

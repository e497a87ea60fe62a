"""A chain of BM13xx chips: addressing, per-chip state and statistics.

The chain is pure bookkeeping (no I/O): the driver tells it what arrived and when, it
answers which chip a reply belongs to, how fast each chip hashes (from its nonces and
from its hash counters), how many hardware errors it made, and which chips went silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.asic.bm13xx.chips import ChipSpec
from drivers.asic.bm13xx.frames import RegisterReply
from drivers.asic.bm13xx.registers import Register

from .stats import WINDOWS_S, RateWindows

COUNTER_MODULUS = 1 << 32
COUNTER_SANITY_FACTOR = 4.0
"""A counter step implying more than this times the nominal hashrate is not believed."""


@dataclass(slots=True)
class ChipState:
    """What the host knows about one chip."""

    index: int
    address: int
    started_at: float
    frequency_mhz: float = 0.0
    nonces: int = 0  # verified
    hw_errors: int = 0
    duplicates: int = 0
    last_seen: float | None = None
    registers: dict[int, int] = field(default_factory=dict)
    last_counter: int | None = None
    last_counter_at: float | None = None
    counter_glitches: int = 0
    nonce_hashes: RateWindows = field(init=False)
    counter_hashes: RateWindows = field(init=False)

    def __post_init__(self) -> None:
        self.nonce_hashes = RateWindows(self.started_at)
        self.counter_hashes = RateWindows(self.started_at)

    @property
    def error_rate(self) -> float:
        """Hardware-error nonces / all nonces: the tuner's main feedback."""
        total = self.nonces + self.hw_errors
        return self.hw_errors / total if total else 0.0


class Chain:
    """The enumerated chips of one UART, addressed ``i * (256 // n)``."""

    def __init__(self, spec: ChipSpec, chip_count: int, now: float) -> None:
        if not 1 <= chip_count <= 256:
            raise ValueError("a chain holds 1..256 chips")
        self.spec = spec
        self.address_interval = 256 // chip_count
        self.chips = [
            ChipState(index=i, address=i * self.address_interval, started_at=now)
            for i in range(chip_count)
        ]
        self.started_at = now

    def __len__(self) -> int:
        return len(self.chips)

    def chip_for_address(self, address: int) -> ChipState:
        """The chip owning ``address`` (chips own a range of the address/nonce space)."""
        return self.chips[min(address // self.address_interval, len(self.chips) - 1)]

    # -- events ----------------------------------------------------------------------------
    def record_nonce(self, chip: ChipState, now: float, valid: bool, difficulty: float) -> None:
        chip.last_seen = now
        if valid:
            chip.nonces += 1
            chip.nonce_hashes.add(now, difficulty * 4294967296.0)
        else:
            chip.hw_errors += 1

    def record_register(self, reply: RegisterReply, now: float) -> ChipState | None:
        """Store a register reply; hash-counter registers feed the counter hashrate."""
        if reply.chip_address % self.address_interval:
            return None  # not an address we assigned: corrupted or stray
        index = reply.chip_address // self.address_interval
        if index >= len(self.chips):
            return None
        chip = self.chips[index]
        chip.last_seen = now
        chip.registers[reply.register] = reply.value
        if reply.register == self.spec.hash_counter_register:
            self._record_counter(chip, reply.value, now)
        return chip

    def _record_counter(self, chip: ChipState, value: int, now: float) -> None:
        if chip.last_counter_at is None:
            chip.counter_hashes.restart(now)  # the first reading is the baseline
        elif self.spec.counter_is_rate:
            # BM1397: the register is a rate; integrate it over the time since last read.
            dt = now - chip.last_counter_at
            if dt > 0:
                chip.counter_hashes.add(now, value * self.spec.hashes_per_count * dt)
        elif chip.last_counter is not None:
            delta = (value - chip.last_counter) % COUNTER_MODULUS
            hashes = delta * self.spec.hashes_per_count
            dt = now - (chip.last_counter_at or now)
            if self._plausible(chip, hashes, dt):
                chip.counter_hashes.add(now, hashes)
            else:
                # a counter reset (chip re-init) or a corrupted reply that slipped past CRC5:
                # take the new value as baseline instead of booking a huge jump
                chip.counter_glitches += 1
        chip.last_counter = value
        chip.last_counter_at = now

    def _plausible(self, chip: ChipState, hashes: float, dt: float) -> bool:
        if chip.frequency_mhz <= 0 or dt <= 0:
            return True
        ceiling = self.spec.expected_hashrate(chip.frequency_mhz) * COUNTER_SANITY_FACTOR
        return hashes <= ceiling * dt

    # -- queries ---------------------------------------------------------------------------
    def silent_chips(self, now: float, timeout: float) -> list[ChipState]:
        """Chips that have not been heard from for ``timeout`` seconds."""
        return [
            c
            for c in self.chips
            if now - (c.last_seen if c.last_seen is not None else c.started_at) > timeout
        ]

    def hashrate(self, now: float, window: int = 60, source: str = "nonces") -> float:
        """Chain hashrate in H/s over ``window`` from verified nonces or hash counters."""
        if source == "nonces":
            return sum(c.nonce_hashes.rate(now, window) for c in self.chips)
        return sum(self.counter_rate(c, now, window) for c in self.chips)

    @staticmethod
    def counter_rate(chip: ChipState, now: float, window: int = 60) -> float:
        """Counters are known up to their last reading: measure the window up to it."""
        if chip.last_counter_at is None:
            return 0.0
        return chip.counter_hashes.rate(min(now, chip.last_counter_at), window)

    def expected_hashrate(self) -> float:
        return sum(self.spec.expected_hashrate(c.frequency_mhz) for c in self.chips)

    def snapshot(self, now: float) -> dict:
        """Plain-data statistics for APIs and ``--json`` output."""
        return {
            "model": self.spec.model,
            "chips": len(self.chips),
            "expected_hashrate_hs": self.expected_hashrate(),
            "hashrate_nonces_hs": {str(w): self.hashrate(now, w, "nonces") for w in WINDOWS_S},
            "hashrate_counters_hs": {str(w): self.hashrate(now, w, "counters") for w in WINDOWS_S},
            "per_chip": [
                {
                    "index": c.index,
                    "address": c.address,
                    "frequency_mhz": c.frequency_mhz,
                    "nonces": c.nonces,
                    "hw_errors": c.hw_errors,
                    "duplicates": c.duplicates,
                    "counter_glitches": c.counter_glitches,
                    "chip_error_counter": c.registers.get(Register.ERROR_COUNTER),
                    "error_rate": c.error_rate,
                    "hashrate_nonces_hs": c.nonce_hashes.rates(now)[60],
                    "hashrate_counters_hs": self.counter_rate(c, now),
                    "last_seen_s_ago": None if c.last_seen is None else now - c.last_seen,
                }
                for c in self.chips
            ],
        }

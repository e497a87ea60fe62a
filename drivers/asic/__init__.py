"""ASIC drivers: BM13xx chains over any byte transport.

- :mod:`drivers.asic.bm13xx`: the sans-IO wire core shared with the simulator (frames,
  CRCs, registers, PLL, chip-spec table; public API documented there).
- :mod:`drivers.asic.driver`: :class:`AsicDriver`, the miner-facing object (bring-up,
  frequency, jobs out, verified nonces back, statistics).
- :mod:`drivers.asic.chain`: per-chip state and hashrate windows; :mod:`.scheduler`: job
  pacing; :mod:`.verify`: host-side nonce re-hashing; :mod:`.job`: :class:`MiningJob`.
- :mod:`drivers.asic.errors`: the exception hierarchy (:class:`AsicError` and children).
"""

from __future__ import annotations

from .driver import AsicDriver, HealthReport, VerifiedNonce
from .errors import AsicError, ChipTimeoutError, ConfigError, EnumerationError, FramingError
from .job import MiningJob

__all__ = [
    "AsicDriver",
    "AsicError",
    "ChipTimeoutError",
    "ConfigError",
    "EnumerationError",
    "FramingError",
    "HealthReport",
    "MiningJob",
    "VerifiedNonce",
]

"""Faults the simulated board can be told to show, and their names on the CLI.

The fault state is plain data shared by the chain (UART faults, chip dropout), the
I2C parts (fan stall, sensor failure, over-current) and the pty runner (unplug). Tests
set it directly; a running board changes it through its control socket
(``blvm sim fault NAME``).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

from drivers.sim.errors import SimConfigError


class Fault(enum.StrEnum):
    """Fault names as the CLI and control socket spell them."""

    CRC = "crc"  # corrupt the CRC of chip replies (rate 0..1, default 1)
    DROP = "drop"  # drop bytes of chip output (rate 0..1, default 0.05)
    CHIP_DROPOUT = "chip-dropout"  # chip INDEX stops answering and hashing
    FAN_STALL = "fan-stall"  # the fan stops; tach reads stalled
    SENSOR_FAIL = "sensor-fail"  # the EMC2101 external diode reads open
    OVER_CURRENT = "over-current"  # the power stage sees current above its fault limit
    UNPLUG = "unplug"  # the serial port vanishes; comes back after SECONDS


@dataclass(slots=True)
class FaultState:
    """Every fault currently injected; all off by default."""

    crc_error_rate: float = 0.0
    byte_drop_rate: float = 0.0
    dead_chips: set[int] = field(default_factory=set)
    fan_stalled: bool = False
    sensor_failed: bool = False
    over_current: bool = False
    unplug_seconds: float | None = None  # pending unplug request, consumed by the pty board

    def apply(self, name: str, on: bool = True, value: float | None = None) -> None:
        """Switch fault ``name`` on (with an optional rate/index/seconds) or off."""
        try:
            fault = Fault(name)
        except ValueError:
            known = ", ".join(f.value for f in Fault)
            raise SimConfigError(f"unknown fault {name!r}; known faults: {known}") from None
        if fault is Fault.CRC:
            self.crc_error_rate = _rate(value, 1.0) if on else 0.0
        elif fault is Fault.DROP:
            self.byte_drop_rate = _rate(value, 0.05) if on else 0.0
        elif fault is Fault.CHIP_DROPOUT:
            index = int(value if value is not None else 0)
            if index < 0:
                raise SimConfigError("chip-dropout needs a chip index >= 0")
            (self.dead_chips.add if on else self.dead_chips.discard)(index)
        elif fault is Fault.FAN_STALL:
            self.fan_stalled = on
        elif fault is Fault.SENSOR_FAIL:
            self.sensor_failed = on
        elif fault is Fault.OVER_CURRENT:
            self.over_current = on
        elif fault is Fault.UNPLUG:
            self.unplug_seconds = (float(value) if value is not None else 1.0) if on else None

    def clear(self) -> None:
        """Switch every fault off."""
        self.crc_error_rate = self.byte_drop_rate = 0.0
        self.dead_chips.clear()
        self.fan_stalled = self.sensor_failed = self.over_current = False
        self.unplug_seconds = None

    def as_dict(self) -> dict[str, object]:
        return {
            "crc_error_rate": self.crc_error_rate,
            "byte_drop_rate": self.byte_drop_rate,
            "dead_chips": sorted(self.dead_chips),
            "fan_stalled": self.fan_stalled,
            "sensor_failed": self.sensor_failed,
            "over_current": self.over_current,
            "unplug_pending": self.unplug_seconds is not None,
        }


def _rate(value: float | None, default: float) -> float:
    rate = default if value is None else float(value)
    if not 0.0 <= rate <= 1.0:
        raise SimConfigError(f"fault rate must be within 0..1, got {rate}")
    return rate


def drop_bytes(data: bytes, rate: float, rng: random.Random) -> tuple[bytes, int]:
    """Lose each byte with probability ``rate``, as a noisy UART line does."""
    if rate <= 0.0 or not data:
        return data, 0
    kept = bytes(b for b in data if rng.random() >= rate)
    return kept, len(data) - len(kept)

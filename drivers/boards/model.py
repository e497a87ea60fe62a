"""The shape of a board definition: plain frozen values, no behaviour beyond checks.

A board is data (like ESP-Miner's device-config table): which chip and how many,
how the chips sit in voltage domains, which fan/power parts at which I2C
addresses, how the host reaches the chain, and the limits nothing may exceed.
The miner, thermal guard and tuner read these instead of branching on names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from drivers.asic.bm13xx.chips import ChipSpec
from drivers.i2c.tps546 import PowerLimits


class TransportKind(enum.StrEnum):
    SERIAL = "serial"  # on-board UART (Bitaxe-class: ESP32/SBC UART or a ttyUSB/ttyACM)
    USB = "usb"  # USB-UART bridge driven through pyusb (GekkoScience sticks)


@dataclass(frozen=True, slots=True)
class I2CPart:
    """One part on the board's I2C bus."""

    kind: str  # "EMC2101", "TPS546"
    address: int
    bus: int = 0


@dataclass(frozen=True, slots=True)
class SafeLimits:
    """What the tuner may never set and when the thermal guard must act."""

    max_chip_temp_c: float
    max_vr_temp_c: float
    vcore_min_mv: int
    vcore_max_mv: int
    freq_min_mhz: float
    freq_max_mhz: float


@dataclass(frozen=True, slots=True)
class UsbId:
    vid: int
    pid: int

    def __str__(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"


@dataclass(frozen=True, slots=True)
class BoardDef:
    """One board model."""

    name: str
    description: str
    chip: ChipSpec  # the driver's chip facts (drivers.asic.bm13xx)
    chip_count: int
    #: Chips per series-stacked voltage domain; the regulator's Vout = Vcore x domains.
    chips_per_domain: int
    limits: SafeLimits
    default_freq_mhz: float
    default_vcore_mv: int
    transport: TransportKind = TransportKind.SERIAL
    usb_id: UsbId | None = None
    fan: I2CPart | None = None
    power: I2CPart | None = None
    #: Host baud after enumeration (the chips are switched to match) and, when it differs
    #: from the chip's usual one, the register value that puts the chips there.
    fast_baud: int | None = None
    fast_baud_value: bytes | None = None
    reset_low_ms: int = 100
    reset_high_ms: int = 100
    #: Board input supply: 5 V on single-chip boards, 12 V on multi-chip ones.
    vin_v: float = 5.0
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def model(self) -> str:
        return self.chip.model

    @property
    def domains(self) -> int:
        return self.chip_count // self.chips_per_domain

    @property
    def host_fast_baud(self) -> int:
        return self.fast_baud or self.chip.fast_baud

    def vout_for(self, vcore_mv: int) -> float:
        """Regulator output (V) for a per-chip core voltage: the domains are in series."""
        return vcore_mv * self.domains / 1000

    def vout_range(self) -> tuple[float, float]:
        return self.vout_for(self.limits.vcore_min_mv), self.vout_for(self.limits.vcore_max_mv)

    def expected_ghs(self, mhz: float | None = None) -> float:
        return self.chip.expected_hashrate(mhz or self.default_freq_mhz, self.chip_count) / 1e9

    def power_limits(self) -> PowerLimits:
        """TPS546 protection settings for this board (input thresholds scale with ``vin_v``)."""
        if self.power is None:
            raise ValueError(f"board {self.name} has no controllable power stage")
        lo, hi = self.vout_range()
        vin = self.vin_v
        return PowerLimits(
            vout_min_v=lo,
            vout_max_v=hi,
            vin_on_v=round(vin * 0.96, 2),
            vin_off_v=round(vin * 0.90, 2),
            vin_uv_warn_v=round(vin * 0.92, 2),
            vin_ov_fault_v=round(vin * 1.3, 2),
            ot_warn_c=self.limits.max_vr_temp_c,
        )

    def problems(self) -> list[str]:
        """Inconsistencies in this definition (empty when sane)."""
        out: list[str] = []
        lim = self.limits
        if self.chip_count < 1:
            out.append("chip_count must be >= 1")
        if self.chips_per_domain < 1 or self.chip_count % self.chips_per_domain:
            out.append("chip_count must be a multiple of chips_per_domain")
        if not lim.vcore_min_mv <= self.default_vcore_mv <= lim.vcore_max_mv:
            out.append("default vcore outside vcore limits")
        if not lim.freq_min_mhz <= self.default_freq_mhz <= lim.freq_max_mhz:
            out.append("default frequency outside frequency limits")
        if not 0 < lim.freq_min_mhz < lim.freq_max_mhz:
            out.append("frequency limits must satisfy 0 < min < max")
        if not 0 < lim.vcore_min_mv <= lim.vcore_max_mv:
            out.append("vcore limits must satisfy 0 < min <= max")
        if not 40 <= lim.max_chip_temp_c <= 110:
            out.append("max chip temperature outside 40..110 °C")
        if not 60 <= lim.max_vr_temp_c <= 125:
            out.append("max VR temperature outside 60..125 °C")
        if (self.transport is TransportKind.USB) != (self.usb_id is not None):
            out.append("usb_id is required exactly for USB boards")
        if self.power is not None and self.power.kind != "TPS546":
            out.append(f"no driver for power part {self.power.kind}")
        if self.fan is not None and self.fan.kind != "EMC2101":
            out.append(f"no driver for fan part {self.fan.kind}")
        for part in (self.fan, self.power):
            if part is not None and not 0x03 <= part.address <= 0x77:
                out.append(f"{part.kind} I2C address 0x{part.address:02X} invalid")
        if not 3.0 <= self.vin_v <= 20.0:
            out.append("input supply outside 3..20 V")
        if self.power is not None:
            try:
                self.power_limits()
            except ValueError as exc:
                out.append(f"power limits: {exc}")
        if self.fan and self.power and self.fan.address == self.power.address:
            out.append("fan and power parts share an I2C address")
        return out

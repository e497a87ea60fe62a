"""TI TPS546 PMBus buck converter: the ASIC core-voltage stage.

The driver converts between volts/amps/°C and PMBus words (VOUT in ULINEAR16
with the exponent read from VOUT_MODE, everything else LINEAR11) and refuses
to report readings that cannot be true, so a dead or floating bus shows up as
:class:`SensorError` in the thermal guard rather than as 0 V. Every such error, and every
protection trip :meth:`TPS546.check` finds (over-current, over-temperature...), is counted
in :attr:`TPS546.fault_log`.

Facts from ``shared/reference/mining-os.md`` and the PMBus 1.3 specification.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass

from drivers.i2c import pmbus
from drivers.i2c.bus import (
    FaultLog,
    SensorError,
    SMBus,
    counts_faults,
    send_byte,
    sensor_errors,
)
from drivers.i2c.pmbus import Cmd

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = 0x24
#: OC / OT fault response: shut down and latch off until OPERATION is cycled.
RESPONSE_LATCH_OFF = 0xC0
#: ON_OFF_CONFIG: PU (bit 4) + CMD (bit 3): on/off by OPERATION alone.
ON_OFF_CONFIG_OPERATION_ONLY = 0x18


class PowerStageFault(SensorError):
    """The power stage reports a protection fault; with response 0xC0 it latched off."""


@dataclass(frozen=True, slots=True)
class PowerLimits:
    """Protection settings written at init (physical units)."""

    vout_min_v: float = 1.0
    vout_max_v: float = 2.0
    vin_on_v: float = 4.8
    vin_off_v: float = 4.5
    vin_uv_warn_v: float = 4.6
    vin_ov_fault_v: float = 6.5
    iout_oc_warn_a: float = 25.0
    iout_oc_fault_a: float = 30.0
    ot_warn_c: float = 105.0
    ot_fault_c: float = 145.0
    switch_khz: int = 650

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.vout_min_v < self.vout_max_v:
            problems.append("need 0 < vout_min < vout_max")
        if not self.vin_off_v < self.vin_on_v < self.vin_ov_fault_v:
            problems.append("need vin_off < vin_on < vin_ov_fault")
        if not 0 < self.iout_oc_warn_a <= self.iout_oc_fault_a:
            problems.append("need 0 < iout warn <= iout fault")
        if not self.ot_warn_c < self.ot_fault_c:
            problems.append("need ot warn < ot fault")
        if problems:
            raise ValueError("inconsistent power limits: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class PowerReading:
    vin_v: float
    vout_v: float
    iout_a: float
    temp_c: float

    @property
    def pout_w(self) -> float:
        return self.vout_v * self.iout_a


class TPS546:
    """Driver for one TPS546 on an :class:`SMBus`."""

    def __init__(
        self,
        bus: SMBus,
        address: int = DEFAULT_ADDRESS,
        limits: PowerLimits | None = None,
        *,
        vin_range_v: tuple[float, float] = (3.0, 20.0),
        temp_range_c: tuple[float, float] = (-40.0, 175.0),
        iout_max_a: float = 80.0,
    ) -> None:
        self.bus = bus
        self.address = address
        self.limits = limits or PowerLimits()
        self.vin_range_v = vin_range_v
        self.temp_range_c = temp_range_c
        self.iout_max_a = iout_max_a
        self._vout_exp: int | None = None
        self.fault_log = FaultLog()
        self._active_faults: frozenset[str] = frozenset()  # seen by check(), not yet cleared

    # -- raw access -----------------------------------------------------------------------------

    def _guard(self, what: str) -> AbstractContextManager[None]:
        return sensor_errors(f"TPS546 {what}", self.address)

    def _read_word(self, cmd: int) -> int:
        return self.bus.read_word_data(self.address, cmd)

    def _write_word(self, cmd: int, value: int) -> None:
        self.bus.write_word_data(self.address, cmd, value)

    def _write_byte(self, cmd: int, value: int) -> None:
        self.bus.write_byte_data(self.address, cmd, value)

    @counts_faults
    def vout_exponent(self) -> int:
        """VOUT_MODE exponent (cached: it is fixed per part)."""
        if self._vout_exp is None:
            with self._guard("read VOUT_MODE"):
                mode = self.bus.read_byte_data(self.address, Cmd.VOUT_MODE)
            try:
                self._vout_exp = pmbus.vout_mode_exponent(mode)
            except pmbus.PMBusFormatError as exc:
                raise SensorError(str(exc), self.address, kind="implausible") from exc
        return self._vout_exp

    def _vout_word(self, volts: float) -> int:
        return pmbus.encode_ulinear16(volts, self.vout_exponent())

    # -- control --------------------------------------------------------------------------------

    @counts_faults
    def init(self) -> None:
        """Output off, protection limits written, faults cleared. Does not switch on."""
        lim = self.limits
        lin = pmbus.encode_linear11
        with self._guard("init"):
            self._write_byte(Cmd.OPERATION, pmbus.OPERATION_OFF)
            # Output follows the OPERATION command only (not the CONTROL pin), so the
            # thermal guard alone decides when the chips get power.
            self._write_byte(Cmd.ON_OFF_CONFIG, ON_OFF_CONFIG_OPERATION_ONLY)
            self._write_word(Cmd.FREQUENCY_SWITCH, lin(lim.switch_khz))
            self._write_word(Cmd.VIN_ON, lin(lim.vin_on_v))
            self._write_word(Cmd.VIN_OFF, lin(lim.vin_off_v))
            self._write_word(Cmd.VIN_UV_WARN_LIMIT, lin(lim.vin_uv_warn_v))
            self._write_word(Cmd.VIN_OV_FAULT_LIMIT, lin(lim.vin_ov_fault_v))
            self._write_word(Cmd.VOUT_MAX, self._vout_word(lim.vout_max_v))
            self._write_word(Cmd.VOUT_OV_FAULT_LIMIT, self._vout_word(lim.vout_max_v * 1.25))
            self._write_word(Cmd.VOUT_OV_WARN_LIMIT, self._vout_word(lim.vout_max_v * 1.1))
            self._write_word(Cmd.VOUT_UV_WARN_LIMIT, self._vout_word(lim.vout_min_v * 0.9))
            self._write_word(Cmd.VOUT_UV_FAULT_LIMIT, self._vout_word(lim.vout_min_v * 0.75))
            self._write_word(Cmd.IOUT_OC_WARN_LIMIT, lin(lim.iout_oc_warn_a))
            self._write_word(Cmd.IOUT_OC_FAULT_LIMIT, lin(lim.iout_oc_fault_a))
            self._write_byte(Cmd.IOUT_OC_FAULT_RESPONSE, RESPONSE_LATCH_OFF)
            self._write_word(Cmd.OT_WARN_LIMIT, lin(lim.ot_warn_c))
            self._write_word(Cmd.OT_FAULT_LIMIT, lin(lim.ot_fault_c))
            self._write_byte(Cmd.OT_FAULT_RESPONSE, RESPONSE_LATCH_OFF)
            send_byte(self.bus, self.address, Cmd.CLEAR_FAULTS)
        log.debug("TPS546 at 0x%02X initialised (output off)", self.address)

    @counts_faults
    def set_vout(self, volts: float) -> None:
        """Set the output voltage (VOUT_COMMAND) and switch on; 0 switches off."""
        if volts == 0:
            self.off()
            return
        lim = self.limits
        if not lim.vout_min_v <= volts <= lim.vout_max_v:
            raise ValueError(
                f"Vout {volts:.3f} V outside the board's {lim.vout_min_v}..{lim.vout_max_v} V"
            )
        word = self._vout_word(volts)
        with self._guard("set VOUT"):
            self._write_word(Cmd.VOUT_COMMAND, word)
            self._write_byte(Cmd.OPERATION, pmbus.OPERATION_ON)
        log.info("TPS546 Vout %.3f V, output on", volts)

    @counts_faults
    def off(self) -> None:
        with self._guard("switch off"):
            self._write_byte(Cmd.OPERATION, pmbus.OPERATION_OFF)
        log.info("TPS546 output off")

    @counts_faults
    def is_on(self) -> bool:
        with self._guard("read OPERATION"):
            return bool(self.bus.read_byte_data(self.address, Cmd.OPERATION) & pmbus.OPERATION_ON)

    @counts_faults
    def clear_faults(self) -> None:
        """CLEAR_FAULTS: releases a latch-off; switch on again with :meth:`set_vout`."""
        with self._guard("clear faults"):
            send_byte(self.bus, self.address, Cmd.CLEAR_FAULTS)
        self._active_faults = frozenset()

    @counts_faults
    def check(self) -> None:
        """Raise :class:`PowerStageFault` if STATUS_WORD shows a fault; count new ones.

        A fault is counted once when it appears (polling it again while it persists does
        not count it again; after :meth:`clear_faults` a new trip counts anew).
        """
        word = self.status_word()
        names = pmbus.status_faults(word)
        if not names:
            self._active_faults = frozenset()
            return
        for name in names:
            if name not in self._active_faults:
                self.fault_log.record(name, f"TPS546 0x{self.address:02X}: {name}")
        self._active_faults = frozenset(names)
        # Name the specific bit (IOUT_OC_FAULT) before its summary (IOUT_POUT).
        names = sorted(names, key=lambda n: pmbus.StatusWord[n] >= 0x100)
        latched = bool(word & pmbus.StatusWord.OFF)
        state = "output latched off" if latched else "output still on"
        exc = PowerStageFault(
            f"TPS546 at 0x{self.address:02X} reports {', '.join(names)} ({state}); remove "
            "the cause, then clear_faults() and set_vout() to switch on again",
            self.address,
            kind=names[0],
        )
        exc.recorded = True  # booked per fault name above
        raise exc

    # -- telemetry ------------------------------------------------------------------------------

    def _read_linear11(self, cmd: Cmd) -> float:
        with self._guard(f"read {cmd.name}"):
            word = self._read_word(cmd)
        if word == 0xFFFF:
            raise SensorError(
                f"{cmd.name} read 0xFFFF (bus floating?)", self.address, kind="bus-floating"
            )
        return pmbus.decode_linear11(word)

    @counts_faults
    def read_vin(self) -> float:
        vin = self._read_linear11(Cmd.READ_VIN)
        lo, hi = self.vin_range_v
        if not lo <= vin <= hi:
            raise SensorError(
                f"input voltage {vin:.3f} V outside plausible {lo}..{hi} V", kind="implausible"
            )
        return vin

    @counts_faults
    def read_vout(self) -> float:
        with self._guard("read READ_VOUT"):
            word = self._read_word(Cmd.READ_VOUT)
        if word == 0xFFFF:
            raise SensorError(
                "READ_VOUT read 0xFFFF (bus floating?)", self.address, kind="bus-floating"
            )
        return pmbus.decode_ulinear16(word, self.vout_exponent())

    @counts_faults
    def read_iout(self) -> float:
        iout = self._read_linear11(Cmd.READ_IOUT)
        if not -1.0 <= iout <= self.iout_max_a:
            raise SensorError(f"output current {iout:.3f} A implausible", kind="implausible")
        return max(iout, 0.0)

    @counts_faults
    def read_temperature(self) -> float:
        temp = self._read_linear11(Cmd.READ_TEMPERATURE_1)
        lo, hi = self.temp_range_c
        if not lo <= temp <= hi:
            raise SensorError(
                f"VR temperature {temp:.2f} °C outside plausible {lo}..{hi} °C", kind="implausible"
            )
        return temp

    @counts_faults
    def read_all(self) -> PowerReading:
        return PowerReading(
            self.read_vin(), self.read_vout(), self.read_iout(), self.read_temperature()
        )

    @counts_faults
    def status_word(self) -> int:
        with self._guard("read STATUS_WORD"):
            return self._read_word(Cmd.STATUS_WORD)

    @counts_faults
    def faults(self) -> list[str]:
        """Names of the active fault/warning bits (empty when healthy)."""
        return pmbus.status_faults(self.status_word())

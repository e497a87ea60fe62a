"""Microchip EMC2101 fan controller with one external-diode temperature channel.

On Bitaxe-class boards the external diode is the ASIC's thermal diode, so this
part is both the fan driver and the chip thermometer. Readings that cannot be
true (diode fault codes, a stalled or absent tach) raise :class:`SensorError`
instead of returning a number the thermal guard might trust, and are counted by kind
in :attr:`EMC2101.fault_log`.

Register facts from the EMC2101 datasheet and ``shared/reference/mining-os.md``.
"""

from __future__ import annotations

import enum
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass

from drivers.i2c.bus import FaultLog, SensorError, SMBus, counts_faults, sensor_errors

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = 0x4C
#: Tach count to RPM: RPM = 5,400,000 / count (2 pulses per revolution, 90 kHz clock).
TACH_CONSTANT = 5_400_000
TACH_STALLED = 0xFFFF
PWM_STEPS = 63
PRODUCT_IDS = {0x16: "EMC2101", 0x28: "EMC2101-R"}
MANUFACTURER_SMSC = 0x5D
#: External-diode values the part reports instead of a temperature (11-bit, MSB:LSB >> 5).
DIODE_OPEN = 0x3F8
DIODE_SHORT = 0x3FF


class Reg(enum.IntEnum):
    INTERNAL_TEMP = 0x00
    EXTERNAL_TEMP_MSB = 0x01
    STATUS = 0x02
    CONFIG = 0x03
    CONVERSION_RATE = 0x04
    EXTERNAL_TEMP_LSB = 0x10
    TACH_LSB = 0x46
    TACH_MSB = 0x47
    TACH_LIMIT_LSB = 0x48
    TACH_LIMIT_MSB = 0x49
    FAN_CONFIG = 0x4A
    FAN_SPINUP = 0x4B
    FAN_SETTING = 0x4C
    PWM_FREQ = 0x4D
    PWM_DIVIDE = 0x4E
    PRODUCT_ID = 0xFD
    MANUFACTURER_ID = 0xFE
    REVISION = 0xFF


class Status(enum.IntFlag):
    TACH_LOW = 0x01
    TCRIT = 0x02
    DIODE_FAULT = 0x04
    EXT_LOW = 0x08
    EXT_HIGH = 0x10
    EEPROM_ERROR = 0x20
    INT_HIGH = 0x40
    ADC_BUSY = 0x80


#: CONFIG: pin 6 is the tach input (ALT_TCH), everything else default.
CONFIG_TACH_INPUT = 0x04
#: FAN_CONFIG: fan setting register drives PWM directly (PROG), tach mode bits 1:0 = 3.
FAN_CONFIG_DIRECT = 0b0010_0011


def rpm_from_tach(count: int) -> int:
    """Fan speed from the 16-bit tach count; 0 and 0xFFFF carry no speed."""
    if count in (0, TACH_STALLED):
        raise SensorError(
            f"fan tach reading 0x{count:04X}: fan stalled, absent or tach broken", kind="fan-stall"
        )
    return TACH_CONSTANT // count


def tach_from_rpm(rpm: float) -> int:
    """The tach count a part reports for ``rpm`` (inverse of :func:`rpm_from_tach`)."""
    if rpm < 1.0:
        return TACH_STALLED
    return min(TACH_STALLED, round(TACH_CONSTANT / rpm))


def duty_to_setting(fraction: float) -> int:
    """PWM duty fraction (0..1) to the 6-bit fan setting."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fan duty must be within 0..1, not {fraction}")
    return round(PWM_STEPS * fraction)


def setting_to_duty(setting: int) -> float:
    """The duty fraction a FAN_SETTING register value drives (only bits 5-0 count)."""
    return (setting & 0x3F) / PWM_STEPS


def external_temp_bytes(raw11: int) -> tuple[int, int]:
    """MSB and LSB registers holding an 11-bit external-diode value (bits 15-5)."""
    word = (raw11 & 0x7FF) << 5
    return word >> 8, word & 0xFF


def external_temp_raw(temp_c: float) -> int:
    """The 11-bit value a part reports for ``temp_c`` (clamped to its -64..127 °C range)."""
    return round(max(-64.0, min(127.0, temp_c)) * 8) & 0x7FF


def external_temp_c(msb: int, lsb: int) -> float:
    """The 11-bit external-diode temperature (0.125 °C steps); fault codes raise."""
    raw = ((msb << 8) | lsb) >> 5
    if raw == DIODE_OPEN:
        raise SensorError(
            "external diode open (ASIC thermal diode disconnected)", kind="diode-open"
        )
    if raw == DIODE_SHORT:
        raise SensorError("external diode shorted", kind="diode-short")
    if raw & 0x400:  # sign bit of the 11-bit two's complement value
        raw -= 0x800
    return raw * 0.125


def internal_temp_c(raw: int) -> float:
    """The internal sensor's signed 8-bit whole-degree reading."""
    return float(raw - 0x100 if raw & 0x80 else raw)


def internal_temp_raw(temp_c: float) -> int:
    """The INTERNAL_TEMP byte for ``temp_c`` (clamped to the part's -64..127 °C range)."""
    return round(max(-64.0, min(127.0, temp_c))) & 0xFF


@dataclass(frozen=True, slots=True)
class FanReading:
    rpm: int
    duty: float


class EMC2101:
    """Driver for one EMC2101 on an :class:`SMBus`."""

    def __init__(
        self,
        bus: SMBus,
        address: int = DEFAULT_ADDRESS,
        *,
        min_temp_c: float = -20.0,
        max_temp_c: float = 125.0,
    ) -> None:
        self.bus = bus
        self.address = address
        self.min_temp_c = min_temp_c
        self.max_temp_c = max_temp_c
        self.fault_log = FaultLog()

    def _read(self, reg: int) -> int:
        return self.bus.read_byte_data(self.address, reg)

    def _write(self, reg: int, value: int) -> None:
        self.bus.write_byte_data(self.address, reg, value)

    def _guard(self, what: str) -> AbstractContextManager[None]:
        return sensor_errors(what, self.address)

    @counts_faults
    def identify(self) -> str:
        """The part name from PRODUCT_ID; raises if something else answers."""
        with self._guard("identify"):
            product = self._read(Reg.PRODUCT_ID)
            maker = self._read(Reg.MANUFACTURER_ID)
        if maker != MANUFACTURER_SMSC or product not in PRODUCT_IDS:
            raise SensorError(
                f"device at 0x{self.address:02X} is not an EMC2101 "
                f"(manufacturer 0x{maker:02X}, product 0x{product:02X})",
                kind="wrong-part",
            )
        return PRODUCT_IDS[product]

    @counts_faults
    def init(self, duty: float = 1.0, check_id: bool = True) -> None:
        """Tach input on, direct PWM control, fans to ``duty`` (full speed until told otherwise)."""
        if check_id:
            self.identify()
        with self._guard("init"):
            self._write(Reg.CONFIG, CONFIG_TACH_INPUT)
            self._write(Reg.FAN_CONFIG, FAN_CONFIG_DIRECT)
            self._write(Reg.FAN_SETTING, duty_to_setting(duty))
        log.debug("EMC2101 at 0x%02X initialised, fan %.0f %%", self.address, duty * 100)

    @counts_faults
    def set_fan_duty(self, fraction: float) -> None:
        setting = duty_to_setting(fraction)
        with self._guard("set fan duty"):
            self._write(Reg.FAN_SETTING, setting)

    @counts_faults
    def fan_duty(self) -> float:
        with self._guard("read fan duty"):
            return setting_to_duty(self._read(Reg.FAN_SETTING))

    @counts_faults
    def tach_count(self) -> int:
        # LSB first: reading it latches the MSB so the two halves belong together.
        with self._guard("read tach"):
            lsb = self._read(Reg.TACH_LSB)
            msb = self._read(Reg.TACH_MSB)
        return (msb << 8) | lsb

    @counts_faults
    def fan_rpm(self) -> int:
        return rpm_from_tach(self.tach_count())

    @counts_faults
    def fan(self) -> FanReading:
        return FanReading(self.fan_rpm(), self.fan_duty())

    @counts_faults
    def status(self) -> Status:
        with self._guard("read status"):
            return Status(self._read(Reg.STATUS))

    @counts_faults
    def external_temp(self) -> float:
        """ASIC temperature in °C from the external diode."""
        # MSB first: reading it latches the fractional LSB.
        with self._guard("read external temperature"):
            msb = self._read(Reg.EXTERNAL_TEMP_MSB)
            lsb = self._read(Reg.EXTERNAL_TEMP_LSB)
        temp = external_temp_c(msb, lsb)
        return self._plausible(temp, "external diode")

    @counts_faults
    def internal_temp(self) -> float:
        with self._guard("read internal temperature"):
            raw = self._read(Reg.INTERNAL_TEMP)
        return self._plausible(internal_temp_c(raw), "internal")

    def _plausible(self, temp: float, which: str) -> float:
        if not self.min_temp_c <= temp <= self.max_temp_c:
            raise SensorError(
                f"{which} temperature {temp:.3f} °C outside plausible "
                f"{self.min_temp_c}..{self.max_temp_c} °C",
                self.address,
                kind="implausible",
            )
        return temp

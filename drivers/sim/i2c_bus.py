"""Simulated I2C parts (EMC2101 fan controller, TPS546 power stage) at the register level.

:class:`SimI2CBus` implements :class:`drivers.i2c.bus.SMBus` (smbus2's method names),
so the real part drivers in ``drivers.i2c`` run unmodified against it. The parts read
their analog values (temperatures, fan speed, currents) from the board physics and
hand their settings (fan duty, output voltage, on/off) back to it; see
:class:`drivers.sim.board.SimBoard`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivers.i2c.bus import I2CError
from drivers.i2c.emc2101 import (
    DIODE_OPEN,
    Reg,
    Status,
    external_temp_bytes,
    external_temp_raw,
    internal_temp_raw,
    setting_to_duty,
    tach_from_rpm,
)
from drivers.i2c.pmbus import (
    OPERATION_OFF,
    OPERATION_ON,
    Cmd,
    StatusWord,
    decode_linear11,
    decode_ulinear16,
    encode_linear11,
    encode_ulinear16,
    vout_mode_exponent,
)
from drivers.sim.faults import FaultState

EMC2101_ADDRESS = 0x4C
TPS546_ADDRESS = 0x24


class SimI2CDevice:
    """Base: a device that answers byte, word and block transfers by command code."""

    present = True

    def read_byte(self, reg: int) -> int:
        raise KeyError(reg)

    def write_byte(self, reg: int, value: int) -> None:
        raise KeyError(reg)

    def read_word(self, reg: int) -> int:
        return self.read_byte(reg) | (self.read_byte(reg + 1) << 8)

    def write_word(self, reg: int, value: int) -> None:
        self.write_byte(reg, value & 0xFF)
        self.write_byte(reg + 1, value >> 8)

    def read_block(self, reg: int, length: int) -> list[int]:
        return [self.read_byte(reg + i) for i in range(length)]

    def write_block(self, reg: int, data: list[int]) -> None:
        for i, value in enumerate(data):
            self.write_byte(reg + i, value)


# Register maps are the drivers': the part and its driver must agree on them.
EmcReg = Reg


_EMC_READ_ONLY = {
    EmcReg.INTERNAL_TEMP,
    EmcReg.EXTERNAL_TEMP_MSB,
    EmcReg.STATUS,
    EmcReg.EXTERNAL_TEMP_LSB,
    EmcReg.TACH_LSB,
    EmcReg.TACH_MSB,
    EmcReg.PRODUCT_ID,
    EmcReg.MANUFACTURER_ID,
    EmcReg.REVISION,
}


class SimEMC2101(SimI2CDevice):
    """EMC2101: PWM fan drive (6-bit setting), tach input, external diode (the ASIC)."""

    def __init__(self, faults: FaultState) -> None:
        self.faults = faults
        self.regs: dict[int, int] = {
            EmcReg.CONFIG: 0x00,
            EmcReg.CONVERSION_RATE: 0x08,
            EmcReg.TACH_LIMIT_LSB: 0xFF,
            EmcReg.TACH_LIMIT_MSB: 0xFF,
            EmcReg.FAN_CONFIG: 0x20,
            EmcReg.FAN_SPINUP: 0x3F,
            # Boards run the fan flat out until firmware takes over; so does the sim.
            EmcReg.FAN_SETTING: 0x3F,
            EmcReg.PWM_FREQ: 0x17,
            EmcReg.PWM_DIVIDE: 0x01,
            EmcReg.PRODUCT_ID: 0x16,
            EmcReg.MANUFACTURER_ID: 0x5D,
            EmcReg.REVISION: 0x01,
        }
        self.external_c = 25.0
        self.internal_c = 25.0
        self.fan_rpm = 0.0
        self._status_latched = 0

    @property
    def duty(self) -> float:
        """Fan drive fraction the host programmed (0..1)."""
        return setting_to_duty(self.regs[EmcReg.FAN_SETTING])

    def update(self, external_c: float, internal_c: float, fan_rpm: float) -> None:
        self.external_c, self.internal_c, self.fan_rpm = external_c, internal_c, fan_rpm
        if self.faults.sensor_failed:
            self._status_latched |= int(Status.DIODE_FAULT)
        if self._tach() > self._tach_limit():
            self._status_latched |= int(Status.TACH_LOW)

    def _tach(self) -> int:
        return tach_from_rpm(self.fan_rpm)

    def _tach_limit(self) -> int:
        return self.regs[EmcReg.TACH_LIMIT_LSB] | (self.regs[EmcReg.TACH_LIMIT_MSB] << 8)

    def _external_raw(self) -> tuple[int, int]:
        if self.faults.sensor_failed:
            return external_temp_bytes(DIODE_OPEN)
        return external_temp_bytes(external_temp_raw(self.external_c))

    def read_byte(self, reg: int) -> int:
        if reg == EmcReg.INTERNAL_TEMP:
            return internal_temp_raw(self.internal_c)
        if reg == EmcReg.EXTERNAL_TEMP_MSB:
            return self._external_raw()[0]
        if reg == EmcReg.EXTERNAL_TEMP_LSB:
            return self._external_raw()[1]
        if reg == EmcReg.TACH_LSB:
            return self._tach() & 0xFF
        if reg == EmcReg.TACH_MSB:
            return self._tach() >> 8
        if reg == EmcReg.STATUS:
            value = self._status_latched  # clears on read, re-set while the cause persists
            self._status_latched = 0
            return value
        if reg in self.regs:
            return self.regs[reg]
        raise KeyError(reg)

    def write_byte(self, reg: int, value: int) -> None:
        if reg in _EMC_READ_ONLY or reg not in self.regs:
            raise KeyError(reg)
        if reg == EmcReg.FAN_SETTING:
            value &= 0x3F
        self.regs[reg] = value & 0xFF


PmbusCmd = Cmd


VOUT_MODE_VALUE = 0x17  # ULINEAR16, exponent -9
VOUT_EXPONENT = vout_mode_exponent(VOUT_MODE_VALUE)
_BYTE_CMDS = {
    PmbusCmd.OPERATION,
    PmbusCmd.ON_OFF_CONFIG,
    PmbusCmd.WRITE_PROTECT,
    PmbusCmd.VOUT_OV_FAULT_RESPONSE,
    PmbusCmd.VOUT_UV_FAULT_RESPONSE,
    PmbusCmd.IOUT_OC_FAULT_RESPONSE,
    PmbusCmd.OT_FAULT_RESPONSE,
    PmbusCmd.VIN_OV_FAULT_RESPONSE,
}
STATUS_IOUT_OC_FAULT = 0x80
STATUS_IOUT_OC_WARN = 0x20
STATUS_TEMP_OT_FAULT = 0x80
STATUS_TEMP_OT_WARN = 0x40
STATUS_CML_INVALID_CMD = 0x80


@dataclass(slots=True)
class PowerStageInputs:
    """What the physics says the load draws and how hot the stage is."""

    load_w: float = 0.0
    vr_temp_c: float = 25.0
    vin_nominal: float = 5.0


class SimTPS546(SimI2CDevice):
    """TPS546 PMBus buck converter: Vout setpoint, on/off, telemetry and latching protection."""

    def __init__(
        self,
        faults: FaultState,
        vout_default: float,
        on: bool,
        vin: float,
        oc_fault_a: float = 30.0,
    ) -> None:
        self.faults = faults
        u16 = self._u16
        self.bytes: dict[int, int] = {
            PmbusCmd.OPERATION: OPERATION_ON if on else OPERATION_OFF,
            PmbusCmd.ON_OFF_CONFIG: 0x1F,
            PmbusCmd.WRITE_PROTECT: 0x00,
            PmbusCmd.VOUT_OV_FAULT_RESPONSE: 0xC0,
            PmbusCmd.VOUT_UV_FAULT_RESPONSE: 0xC0,
            PmbusCmd.IOUT_OC_FAULT_RESPONSE: 0xC0,
            PmbusCmd.OT_FAULT_RESPONSE: 0xC0,
            PmbusCmd.VIN_OV_FAULT_RESPONSE: 0xC0,
        }
        self.words: dict[int, int] = {
            PmbusCmd.VOUT_COMMAND: u16(vout_default),
            PmbusCmd.VOUT_MAX: u16(max(vout_default * 1.5, 2.0)),
            PmbusCmd.VOUT_SCALE_LOOP: encode_linear11(0.25),
            PmbusCmd.FREQUENCY_SWITCH: encode_linear11(650),
            PmbusCmd.VIN_ON: encode_linear11(vin * 0.9),
            PmbusCmd.VIN_OFF: encode_linear11(vin * 0.8),
            PmbusCmd.VOUT_OV_FAULT_LIMIT: u16(max(vout_default * 1.5, 2.0) * 1.25),
            PmbusCmd.VOUT_OV_WARN_LIMIT: u16(max(vout_default * 1.5, 2.0) * 1.1),
            PmbusCmd.VOUT_UV_WARN_LIMIT: u16(vout_default * 0.5),
            PmbusCmd.VOUT_UV_FAULT_LIMIT: u16(vout_default * 0.4),
            PmbusCmd.IOUT_OC_FAULT_LIMIT: encode_linear11(oc_fault_a),
            PmbusCmd.IOUT_OC_WARN_LIMIT: encode_linear11(oc_fault_a * 5 / 6),
            PmbusCmd.OT_FAULT_LIMIT: encode_linear11(145.0),
            PmbusCmd.OT_WARN_LIMIT: encode_linear11(105.0),
            PmbusCmd.VIN_OV_FAULT_LIMIT: encode_linear11(vin * 1.5),
            PmbusCmd.VIN_UV_WARN_LIMIT: encode_linear11(vin * 0.85),
        }
        self.inputs = PowerStageInputs(vin_nominal=vin)
        self.status_iout = 0
        self.status_temp = 0
        self.status_cml = 0
        self.latched_off = False

    @staticmethod
    def _u16(volts: float) -> int:
        return encode_ulinear16(volts, VOUT_EXPONENT)

    # -- state the board reads ---------------------------------------------------------
    @property
    def output_on(self) -> bool:
        return bool(self.bytes[PmbusCmd.OPERATION] & OPERATION_ON) and not self.latched_off

    @property
    def vout(self) -> float:
        """Output voltage now (0 when off)."""
        if not self.output_on:
            return 0.0
        setpoint = decode_ulinear16(self.words[PmbusCmd.VOUT_COMMAND], VOUT_EXPONENT)
        vmax = decode_ulinear16(self.words[PmbusCmd.VOUT_MAX], VOUT_EXPONENT)
        return min(setpoint, vmax)

    def iout(self) -> float:
        vout = self.vout
        amps = self.inputs.load_w / vout if vout > 0 else 0.0
        if self.faults.over_current and self.output_on:
            amps += 2.0 * decode_linear11(self.words[PmbusCmd.IOUT_OC_FAULT_LIMIT])
        return amps

    def vin(self) -> float:
        p_in = self.inputs.load_w / 0.9
        return self.inputs.vin_nominal - 0.02 * p_in / self.inputs.vin_nominal

    def update(self, inputs: PowerStageInputs) -> None:
        """New physics values; apply warnings and latching fault responses."""
        self.inputs = inputs
        amps = self.iout()
        if amps > decode_linear11(self.words[PmbusCmd.IOUT_OC_WARN_LIMIT]):
            self.status_iout |= STATUS_IOUT_OC_WARN
        if amps > decode_linear11(self.words[PmbusCmd.IOUT_OC_FAULT_LIMIT]):
            self.status_iout |= STATUS_IOUT_OC_FAULT
            self._trip()
        temp = inputs.vr_temp_c
        if temp > decode_linear11(self.words[PmbusCmd.OT_WARN_LIMIT]):
            self.status_temp |= STATUS_TEMP_OT_WARN
        if temp > decode_linear11(self.words[PmbusCmd.OT_FAULT_LIMIT]):
            self.status_temp |= STATUS_TEMP_OT_FAULT
            self._trip()

    def _trip(self) -> None:
        # Response 0xC0: latch off until faults are cleared and the output is re-enabled.
        if self.output_on:
            self.latched_off = True
            self.bytes[PmbusCmd.OPERATION] = 0x00

    def status_word(self) -> int:
        word = StatusWord(0)
        if not self.output_on:
            word |= StatusWord.OFF | StatusWord.POWER_GOOD_NEGATED
        if self.status_iout & STATUS_IOUT_OC_FAULT:
            word |= StatusWord.IOUT_OC_FAULT
        if self.status_iout:
            word |= StatusWord.IOUT_POUT
        if self.status_temp:
            word |= StatusWord.TEMPERATURE
        if self.status_cml:
            word |= StatusWord.CML
        if word & 0xFF00 and not word & 0x00FE:
            word |= StatusWord.NONE_OF_THE_ABOVE
        return int(word)

    # -- register access ----------------------------------------------------------------
    def read_byte(self, reg: int) -> int:
        if reg == PmbusCmd.VOUT_MODE:
            return VOUT_MODE_VALUE
        if reg == PmbusCmd.STATUS_BYTE:
            return self.status_word() & 0xFF
        if reg == PmbusCmd.STATUS_IOUT:
            return self.status_iout
        if reg == PmbusCmd.STATUS_TEMPERATURE:
            return self.status_temp
        if reg == PmbusCmd.STATUS_CML:
            return self.status_cml
        if reg in (PmbusCmd.STATUS_VOUT, PmbusCmd.STATUS_INPUT):
            return 0
        if reg in self.bytes:
            return self.bytes[reg]
        return self._invalid(reg)

    def write_byte(self, reg: int, value: int) -> None:
        if reg == PmbusCmd.CLEAR_FAULTS:
            self.status_iout = self.status_temp = self.status_cml = 0
            self.latched_off = False
            return
        if reg not in self.bytes:
            self._invalid(reg)
        self.bytes[reg] = value & 0xFF

    def read_word(self, reg: int) -> int:
        if reg == PmbusCmd.STATUS_WORD:
            return self.status_word()
        if reg == PmbusCmd.READ_VIN:
            return encode_linear11(self.vin())
        if reg == PmbusCmd.READ_VOUT:
            return self._u16(self.vout)
        if reg == PmbusCmd.READ_IOUT:
            return encode_linear11(self.iout())
        if reg == PmbusCmd.READ_TEMPERATURE_1:
            return encode_linear11(self.inputs.vr_temp_c)
        if reg in self.words:
            return self.words[reg]
        if reg in self.bytes:
            return self.bytes[reg]
        return self._invalid(reg)

    def write_word(self, reg: int, value: int) -> None:
        if reg not in self.words:
            self._invalid(reg)
        self.words[reg] = value & 0xFFFF

    def read_block(self, reg: int, length: int) -> list[int]:
        if reg == PmbusCmd.MFR_ID:
            return list(b"\x02TI".ljust(length, b"\x00")[:length])
        return super().read_block(reg, length)

    def _invalid(self, reg: int) -> int:
        self.status_cml |= STATUS_CML_INVALID_CMD
        raise KeyError(reg)


class SimI2CBus:
    """The board's I2C bus: smbus2-style transfers routed to the simulated parts."""

    def __init__(self, devices: dict[int, SimI2CDevice] | None = None) -> None:
        self.devices: dict[int, SimI2CDevice] = dict(devices or {})
        self.transfers = 0

    def _dev(self, addr: int, reg: int) -> SimI2CDevice:
        self.transfers += 1
        dev = self.devices.get(addr)
        if dev is None or not dev.present:
            raise I2CError("no ACK from device", addr, reg)
        return dev

    def _call(self, addr: int, reg: int, fn, *args):
        try:
            return fn(*args)
        except KeyError:
            raise I2CError("register not acknowledged", addr, reg) from None

    def read_byte_data(self, addr: int, reg: int) -> int:
        dev = self._dev(addr, reg)
        return self._call(addr, reg, dev.read_byte, reg)

    def write_byte_data(self, addr: int, reg: int, value: int) -> None:
        _check(value, 0xFF)
        dev = self._dev(addr, reg)
        self._call(addr, reg, dev.write_byte, reg, value)

    def read_word_data(self, addr: int, reg: int) -> int:
        dev = self._dev(addr, reg)
        return self._call(addr, reg, dev.read_word, reg)

    def write_word_data(self, addr: int, reg: int, value: int) -> None:
        _check(value, 0xFFFF)
        dev = self._dev(addr, reg)
        self._call(addr, reg, dev.write_word, reg, value)

    def read_i2c_block_data(self, addr: int, reg: int, length: int) -> list[int]:
        if not 0 < length <= 32:
            raise ValueError("SMBus block length must be 1..32")
        dev = self._dev(addr, reg)
        return self._call(addr, reg, dev.read_block, reg, length)

    def write_i2c_block_data(self, addr: int, reg: int, data: list[int]) -> None:
        for value in data:
            _check(value, 0xFF)
        dev = self._dev(addr, reg)
        self._call(addr, reg, dev.write_block, reg, list(data))


def _check(value: int, limit: int) -> None:
    if not 0 <= value <= limit or isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"value out of range 0..{limit}: {value!r}")


def internal_board_temp(ambient_c: float, chip_c: float) -> float:
    """The controller's own die sits between ambient and the ASIC."""
    return ambient_c + 0.3 * (chip_c - ambient_c) if math.isfinite(chip_c) else ambient_c

"""PMBus number formats and status bits (PMBus 1.3 part II), shared by power-stage drivers.

- LINEAR11: 16-bit word, bits 15-11 a signed 5-bit exponent N, bits 10-0 a
  signed 11-bit mantissa Y; value = Y * 2**N. Used for currents, temperatures,
  input voltage and frequency.
- ULINEAR16: output voltages: an unsigned 16-bit mantissa whose exponent lives
  separately in VOUT_MODE (bits 4-0, signed), value = V * 2**N.
"""

from __future__ import annotations

import enum
import math


class PMBusFormatError(ValueError):
    """A value that the format cannot hold."""


def decode_linear11(word: int) -> float:
    if not 0 <= word <= 0xFFFF:
        raise PMBusFormatError(f"LINEAR11 word out of range: {word}")
    exponent = word >> 11
    if exponent & 0x10:
        exponent -= 0x20
    mantissa = word & 0x7FF
    if mantissa & 0x400:
        mantissa -= 0x800
    return mantissa * 2.0**exponent


def encode_linear11(value: float) -> int:
    """The LINEAR11 word with the finest exponent whose mantissa still fits 11 signed bits."""
    if not math.isfinite(value):
        raise PMBusFormatError(f"cannot encode {value} as LINEAR11")
    if value == 0:
        return 0x0000
    for exponent in range(-16, 16):
        mantissa = round(value / 2.0**exponent)
        if -1024 <= mantissa <= 1023:
            return ((exponent & 0x1F) << 11) | (mantissa & 0x7FF)
    raise PMBusFormatError(f"{value} is too large for LINEAR11")


def vout_mode_exponent(vout_mode: int) -> int:
    """The signed exponent from a VOUT_MODE byte; only linear mode (bits 7-5 = 000) is used."""
    if vout_mode >> 5 != 0:
        raise PMBusFormatError(f"VOUT_MODE 0x{vout_mode:02X} is not ULINEAR16 mode")
    exponent = vout_mode & 0x1F
    return exponent - 0x20 if exponent & 0x10 else exponent


def decode_ulinear16(word: int, exponent: int) -> float:
    if not 0 <= word <= 0xFFFF:
        raise PMBusFormatError(f"ULINEAR16 word out of range: {word}")
    return word * 2.0**exponent


def encode_ulinear16(value: float, exponent: int) -> int:
    mantissa = round(value / 2.0**exponent)
    if not 0 <= mantissa <= 0xFFFF:
        raise PMBusFormatError(f"{value} V does not fit ULINEAR16 with exponent {exponent}")
    return mantissa


class Cmd(enum.IntEnum):
    """PMBus command codes used by the drivers."""

    OPERATION = 0x01
    ON_OFF_CONFIG = 0x02
    CLEAR_FAULTS = 0x03
    WRITE_PROTECT = 0x10
    VOUT_MODE = 0x20
    VOUT_COMMAND = 0x21
    VOUT_MAX = 0x24
    VOUT_SCALE_LOOP = 0x29
    FREQUENCY_SWITCH = 0x33
    VIN_ON = 0x35
    VIN_OFF = 0x36
    VOUT_OV_FAULT_LIMIT = 0x40
    VOUT_OV_FAULT_RESPONSE = 0x41
    VOUT_OV_WARN_LIMIT = 0x42
    VOUT_UV_WARN_LIMIT = 0x43
    VOUT_UV_FAULT_LIMIT = 0x44
    VOUT_UV_FAULT_RESPONSE = 0x45
    IOUT_OC_FAULT_LIMIT = 0x46
    IOUT_OC_FAULT_RESPONSE = 0x47
    IOUT_OC_WARN_LIMIT = 0x4A
    OT_FAULT_LIMIT = 0x4F
    OT_FAULT_RESPONSE = 0x50
    OT_WARN_LIMIT = 0x51
    VIN_OV_FAULT_LIMIT = 0x55
    VIN_OV_FAULT_RESPONSE = 0x56
    VIN_UV_WARN_LIMIT = 0x58
    STATUS_BYTE = 0x78
    STATUS_WORD = 0x79
    STATUS_VOUT = 0x7A
    STATUS_IOUT = 0x7B
    STATUS_INPUT = 0x7C
    STATUS_TEMPERATURE = 0x7D
    STATUS_CML = 0x7E
    READ_VIN = 0x88
    READ_VOUT = 0x8B
    READ_IOUT = 0x8C
    READ_TEMPERATURE_1 = 0x8D
    MFR_ID = 0x99
    IC_DEVICE_ID = 0xAD


OPERATION_ON = 0x80
OPERATION_OFF = 0x00


class StatusWord(enum.IntFlag):
    """STATUS_WORD bits (low byte = STATUS_BYTE)."""

    NONE_OF_THE_ABOVE = 1 << 0
    CML = 1 << 1
    TEMPERATURE = 1 << 2
    VIN_UV_FAULT = 1 << 3
    IOUT_OC_FAULT = 1 << 4
    VOUT_OV_FAULT = 1 << 5
    OFF = 1 << 6
    BUSY = 1 << 7
    UNKNOWN = 1 << 8
    OTHER = 1 << 9
    FANS = 1 << 10
    POWER_GOOD_NEGATED = 1 << 11
    MFR_SPECIFIC = 1 << 12
    INPUT = 1 << 13
    IOUT_POUT = 1 << 14
    VOUT = 1 << 15


#: Bits that mean something is wrong (OFF and POWER_GOOD# alone are normal while off).
STATUS_FAULT_BITS = (
    StatusWord.CML
    | StatusWord.TEMPERATURE
    | StatusWord.VIN_UV_FAULT
    | StatusWord.IOUT_OC_FAULT
    | StatusWord.VOUT_OV_FAULT
    | StatusWord.VOUT
    | StatusWord.IOUT_POUT
    | StatusWord.INPUT
    | StatusWord.OTHER
    | StatusWord.UNKNOWN
    | StatusWord.FANS
    | StatusWord.MFR_SPECIFIC
)


def decode_status_word(word: int) -> list[str]:
    """Names of the set STATUS_WORD bits, most significant first."""
    if not 0 <= word <= 0xFFFF:
        raise PMBusFormatError(f"STATUS_WORD out of range: {word}")
    return [flag.name for flag in sorted(StatusWord, reverse=True) if word & flag and flag.name]


def status_faults(word: int) -> list[str]:
    """Only the fault/warning bits of STATUS_WORD (ignores OFF, BUSY, POWER_GOOD#)."""
    return decode_status_word(word & STATUS_FAULT_BITS)

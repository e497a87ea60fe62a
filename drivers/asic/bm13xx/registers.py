"""BM13xx register addresses and the encoders/decoders for the values we write to them.

Every encoder has its inverse next to it so the simulator (chip side) reads exactly what
the host writes; the round trip is what the tests check.
"""

from __future__ import annotations

from enum import IntEnum

from drivers.asic.errors import ConfigError

CHIP_CLOCK_HZ = 25_000_000
"""Reference clock of every BM13xx: PLL and UART dividers count from it."""


class Register(IntEnum):
    """Register addresses (byte 1 of a read/write command's data)."""

    CHIP_ID = 0x00
    HASH_RATE = 0x04  # BM1397: hashrate in units of 2^20 H/s
    PLL0 = 0x08  # hashing PLL: vdo, fbdiv, refdiv, postdiv
    HASH_COUNTING = 0x10
    TICKET_MASK = 0x14
    MISC_CONTROL = 0x18  # UART baud divider lives here
    ORDERED_CLOCK_ENABLE = 0x20
    FAST_UART = 0x28  # BM1366/68/70 fast UART configuration
    CORE_REGISTER_CONTROL = 0x3C
    ERROR_COUNTER = 0x4C
    ANALOG_MUX = 0x54  # routes the temperature diode
    IO_DRIVER_STRENGTH = 0x58
    PLL3 = 0x68
    CLOCK_ORDER_CONTROL0 = 0x80
    CLOCK_ORDER_CONTROL1 = 0x84
    DOMAIN0_COUNTER = 0x88
    DOMAIN1_COUNTER = 0x89
    DOMAIN2_COUNTER = 0x8A
    DOMAIN3_COUNTER = 0x8B
    TOTAL_COUNTER = 0x8C  # hashes / 2^32 since reset (BM1366/68/70)
    VERSION_ROLLING = 0xA4
    REG_A8 = 0xA8


def value_bytes(value: int | bytes) -> bytes:
    """Register values travel as 4 big-endian bytes."""
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFFFF:
            raise ConfigError(f"register value {value:#x} does not fit 32 bits")
        return value.to_bytes(4, "big")
    if len(value) != 4:
        raise ConfigError(f"register value must be 4 bytes, got {len(value)}")
    return bytes(value)


def _reverse_bits(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


_BITREV = bytes(_reverse_bits(b) for b in range(256))


def ticket_mask_bytes(difficulty: int) -> bytes:
    """Ticket mask for ASIC difficulty ``difficulty`` (rounded down to a power of two).

    The chip reads each byte of the mask LSB-first, so each byte is bit-reversed and the
    mask goes out high byte first: 256 -> 00 00 00 FF, 512 -> 00 00 80 FF.
    """
    if difficulty < 1 or difficulty > 1 << 32:
        raise ConfigError(f"ticket difficulty {difficulty} outside 1..2^32")
    mask = (1 << (difficulty.bit_length() - 1)) - 1
    return bytes(_BITREV[b] for b in mask.to_bytes(4, "big"))


def ticket_mask_difficulty(value: bytes) -> int:
    """Inverse of :func:`ticket_mask_bytes`: the power-of-two difficulty the mask selects."""
    mask = int.from_bytes(bytes(_BITREV[b] for b in value_bytes(value)), "big")
    if mask & (mask + 1):
        raise ConfigError(f"ticket mask {value.hex()} has holes; must be 2^k - 1")
    return mask + 1


def power_of_two_floor(difficulty: int) -> int:
    """Largest power of two not above ``difficulty``: what the chip will actually filter at."""
    return 1 << (max(1, difficulty).bit_length() - 1)


VERSION_ROLLING_ENABLE = 0x9000
VERSION_MASK_SHIFT = 13  # BIP320 rolls bits 13..28


def version_mask_bytes(mask: int) -> bytes:
    """Register 0xA4 value: ``90 00`` then the mask's bits 13..28 as 16-bit big-endian."""
    if mask & ~0x1FFFE000:
        raise ConfigError(f"version mask {mask:#010x} has bits outside 13..28 (BIP320)")
    return VERSION_ROLLING_ENABLE.to_bytes(2, "big") + (mask >> VERSION_MASK_SHIFT).to_bytes(
        2, "big"
    )


def version_mask_from_bytes(value: bytes) -> int:
    """Inverse of :func:`version_mask_bytes` (0 when rolling is not enabled)."""
    raw = value_bytes(value)
    if int.from_bytes(raw[:2], "big") & VERSION_ROLLING_ENABLE != VERSION_ROLLING_ENABLE:
        return 0
    return int.from_bytes(raw[2:], "big") << VERSION_MASK_SHIFT


def misc_control_baud(value: bytes) -> int:
    """UART baud selected by a MISC_CONTROL (0x18) value: 25 MHz / ((div + 1) * 8).

    The 5-bit divider sits in bits 8..12 of the register: ``00 00 7A 31`` -> 26 -> ~115,741;
    ``00 00 60 31`` -> 0 -> 3,125,000.
    """
    divider = (int.from_bytes(value_bytes(value), "big") >> 8) & 0x1F
    return CHIP_CLOCK_HZ // ((divider + 1) * 8)

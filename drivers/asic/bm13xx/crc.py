"""CRC5 and CRC16 as the BM13xx family computes them on its UART frames.

CRC5 (poly x^5+x^2+1, init 0x1F, MSB first, no final xor) guards command frames
and chip replies; CRC16/CCITT-FALSE guards job frames. Both are table-driven:
they sit on the nonce-reply hot path.
"""

from __future__ import annotations


def _crc5_table() -> list[int]:
    # The 5-bit register is kept left-aligned in a byte (poly 0x05 << 3 = 0x28)
    # so a whole input byte can be folded in with one lookup.
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x28) if crc & 0x80 else (crc << 1)
        table.append(crc & 0xF8)
    return table


_CRC5 = _crc5_table()


def crc5(data: bytes | bytearray | memoryview, init: int = 0x1F) -> int:
    """CRC5 over whole bytes, MSB first."""
    crc = init << 3
    table = _CRC5
    for byte in data:
        crc = table[crc ^ byte]
    return crc >> 3


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data: bytes | bytearray | memoryview, init: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, unreflected)."""
    crc = init
    table = _CRC16
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc

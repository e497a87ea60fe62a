"""PMBus LINEAR11 / ULINEAR16 conversions and STATUS_WORD decoding with known values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.i2c import pmbus


@pytest.mark.parametrize(
    ("word", "value"),
    [
        (0x0000, 0.0),
        (0xE808, 1.0),  # N = -3, Y = 8
        (0xF0C8, 50.0),  # N = -2, Y = 200
        (0xE7F8, -0.5),  # N = -4, Y = -8
        (0x0801, 2.0),  # N = 1, Y = 1
        (0xDB20, 25.0),  # N = -5, Y = 800
        (0x028A, 650.0),  # N = 0, Y = 650 (kHz)
    ],
)
def test_pmbus_linear11_known_values(word: int, value: float) -> None:
    assert pmbus.decode_linear11(word) == value


@pytest.mark.parametrize(("value", "word"), [(25.0, 0xDB20), (650.0, 0x028A), (0.0, 0x0000)])
def test_pmbus_linear11_encode_uses_finest_exponent(value: float, word: int) -> None:
    assert pmbus.encode_linear11(value) == word


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-30000, max_value=30000, allow_nan=False))
def test_pmbus_linear11_roundtrip(value: float) -> None:
    decoded = pmbus.decode_linear11(pmbus.encode_linear11(value))
    # 11-bit signed mantissa: relative error at most half a step of 1/1024.
    assert abs(decoded - value) <= max(abs(value) / 1024, 2.0**-17)


def test_pmbus_vout_mode_and_ulinear16() -> None:
    assert pmbus.vout_mode_exponent(0x17) == -9  # TPS546 default
    assert pmbus.vout_mode_exponent(0x14) == -12
    assert pmbus.vout_mode_exponent(0x02) == 2
    assert pmbus.encode_ulinear16(1.2, -9) == 614  # 1.2 * 512 = 614.4
    assert pmbus.decode_ulinear16(614, -9) == 1.19921875
    assert pmbus.encode_ulinear16(1.15, -12) == 4710
    with pytest.raises(pmbus.PMBusFormatError):
        pmbus.vout_mode_exponent(0x40)  # VID mode, not linear
    with pytest.raises(pmbus.PMBusFormatError):
        pmbus.encode_ulinear16(200.0, -9)


def test_pmbus_status_word_decoding() -> None:
    assert pmbus.decode_status_word(0x0000) == []
    assert pmbus.decode_status_word(0x0840) == ["POWER_GOOD_NEGATED", "OFF"]
    assert pmbus.status_faults(0x0840) == []  # off and not power-good: normal when off
    assert pmbus.decode_status_word(0x8020) == ["VOUT", "VOUT_OV_FAULT"]
    assert pmbus.status_faults(0x4014) == ["IOUT_POUT", "IOUT_OC_FAULT", "TEMPERATURE"]
    assert pmbus.status_faults(0x0008) == ["VIN_UV_FAULT"]
    with pytest.raises(pmbus.PMBusFormatError):
        pmbus.decode_status_word(0x10000)

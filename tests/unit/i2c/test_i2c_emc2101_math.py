"""EMC2101 conversions: tach to RPM, external diode temperature, duty steps."""

from __future__ import annotations

import pytest

from drivers.i2c import emc2101
from drivers.i2c.bus import I2CError, SensorError


@pytest.mark.parametrize(
    ("count", "rpm"), [(5400, 1000), (2700, 2000), (1800, 3000), (1, 5_400_000)]
)
def test_emc2101_rpm(count: int, rpm: int) -> None:
    assert emc2101.rpm_from_tach(count) == rpm


@pytest.mark.parametrize("count", [0, 0xFFFF])
def test_emc2101_stalled_or_missing_tach_is_sensor_doubt(count: int) -> None:
    with pytest.raises(SensorError, match="tach"):
        emc2101.rpm_from_tach(count)


@pytest.mark.parametrize(
    ("msb", "lsb", "temp"),
    [
        (0x32, 0xE0, 50.875),
        (0x32, 0x20, 50.125),
        (0x00, 0x00, 0.0),
        (0x4B, 0x00, 75.0),
        (0xF6, 0x00, -10.0),
        (0xFF, 0xE0, -0.125),
        (0x32, 0x1F, 50.0),  # the low 5 bits of the LSB are not part of the value
    ],
)
def test_emc2101_external_temperature(msb: int, lsb: int, temp: float) -> None:
    assert emc2101.external_temp_c(msb, lsb) == temp


@pytest.mark.parametrize(("msb", "lsb", "what"), [(0x7F, 0x00, "open"), (0x7F, 0xE0, "short")])
def test_emc2101_diode_fault_codes(msb: int, lsb: int, what: str) -> None:
    with pytest.raises(SensorError, match=what):
        emc2101.external_temp_c(msb, lsb)


def test_emc2101_duty_steps() -> None:
    assert emc2101.duty_to_setting(1.0) == 63
    assert emc2101.duty_to_setting(0.0) == 0
    assert emc2101.duty_to_setting(0.5) == 32
    assert emc2101.duty_to_setting(0.25) == 16
    with pytest.raises(ValueError):
        emc2101.duty_to_setting(1.2)


def test_sensor_error_is_an_i2c_error() -> None:
    # The thermal guard can catch I2CError and treat every sensor doubt alike.
    assert issubclass(SensorError, I2CError)
    err = SensorError("x", 0x4C, 0x01)
    assert "0x4C" in str(err) and "0x01" in str(err)


@pytest.mark.parametrize("temp", [50.875, 50.125, 0.0, 75.0, -10.0, -0.125, -64.0, 126.875])
def test_emc2101_external_temperature_round_trip(temp: float) -> None:
    msb, lsb = emc2101.external_temp_bytes(emc2101.external_temp_raw(temp))
    assert emc2101.external_temp_c(msb, lsb) == temp


def test_emc2101_encoders_clamp_and_report_faults() -> None:
    # 127 °C, the clamp, encodes like the part's open-diode code (0x3F8)
    assert emc2101.external_temp_bytes(emc2101.external_temp_raw(300.0)) == (0x7F, 0x00)
    assert emc2101.external_temp_bytes(emc2101.DIODE_OPEN) == (0x7F, 0x00)
    assert emc2101.internal_temp_c(emc2101.internal_temp_raw(-10.4)) == -10.0
    assert emc2101.internal_temp_raw(500.0) == 127
    assert emc2101.tach_from_rpm(0.5) == emc2101.TACH_STALLED
    assert emc2101.tach_from_rpm(50.0) == emc2101.TACH_STALLED  # count saturates
    assert emc2101.rpm_from_tach(emc2101.tach_from_rpm(3000)) == 3000
    assert emc2101.setting_to_duty(0xFF) == 1.0  # bits 7-6 are ignored

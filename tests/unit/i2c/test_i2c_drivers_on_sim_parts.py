"""EMC2101 and TPS546 drivers against the simulator's register-level parts."""

from __future__ import annotations

import pytest

from drivers.boards import get_board
from drivers.i2c import pmbus
from drivers.i2c.bus import I2CError, SensorError, SMBus
from drivers.i2c.emc2101 import EMC2101, Status
from drivers.i2c.tps546 import TPS546, PowerLimits
from drivers.sim.faults import FaultState
from drivers.sim.i2c_bus import (
    EMC2101_ADDRESS,
    TPS546_ADDRESS,
    PowerStageInputs,
    SimEMC2101,
    SimI2CBus,
    SimTPS546,
)


@pytest.fixture
def parts():
    faults = FaultState()
    emc = SimEMC2101(faults)
    tps = SimTPS546(faults, vout_default=1.2, on=False, vin=5.0)
    bus = SimI2CBus({EMC2101_ADDRESS: emc, TPS546_ADDRESS: tps})
    return faults, emc, tps, bus


def test_i2c_sim_bus_satisfies_the_protocol(parts) -> None:
    assert isinstance(parts[3], SMBus)


def test_i2c_emc2101_init_fan_and_temperature(parts) -> None:
    _, emc, _, bus = parts
    fan = EMC2101(bus)
    assert fan.identify() == "EMC2101"
    fan.init(duty=1.0)
    assert emc.regs[0x03] == 0x04 and emc.regs[0x4A] == 0b0010_0011
    fan.set_fan_duty(0.5)
    assert emc.duty == pytest.approx(32 / 63)
    assert fan.fan_duty() == pytest.approx(32 / 63)
    emc.update(external_c=55.25, internal_c=38.0, fan_rpm=3000.0)
    assert fan.fan_rpm() == 3000  # tach 1800 -> 5,400,000 / 1800
    assert fan.external_temp() == 55.25
    assert fan.internal_temp() == 38.0


def test_i2c_emc2101_stalled_fan_and_failed_diode_raise(parts) -> None:
    faults, emc, _, bus = parts
    fan = EMC2101(bus)
    emc.update(external_c=50.0, internal_c=30.0, fan_rpm=0.0)
    with pytest.raises(SensorError, match="tach"):
        fan.fan_rpm()
    faults.sensor_failed = True
    emc.update(external_c=50.0, internal_c=30.0, fan_rpm=2000.0)
    assert Status.DIODE_FAULT in fan.status()
    with pytest.raises(SensorError, match="open"):
        fan.external_temp()


def test_i2c_emc2101_missing_part_is_sensor_error(parts) -> None:
    _, emc, _, bus = parts
    emc.present = False
    fan = EMC2101(bus)
    with pytest.raises(SensorError, match="read external temperature failed") as info:
        fan.external_temp()
    assert isinstance(info.value.__cause__, I2CError)


def test_i2c_emc2101_implausible_temperature(parts) -> None:
    _, emc, _, bus = parts
    emc.update(external_c=-40.0, internal_c=25.0, fan_rpm=2000.0)
    with pytest.raises(SensorError, match="plausible"):
        EMC2101(bus).external_temp()


def test_i2c_tps546_init_writes_limits_and_stays_off(parts) -> None:
    _, _, tps, bus = parts
    limits = get_board("bitaxe-gamma").power_limits()
    vr = TPS546(bus, limits=limits)
    vr.init()
    assert not tps.output_on
    assert pmbus.decode_linear11(tps.words[pmbus.Cmd.IOUT_OC_FAULT_LIMIT]) == 30.0
    assert pmbus.decode_linear11(tps.words[pmbus.Cmd.OT_FAULT_LIMIT]) == 145.0
    assert pmbus.decode_linear11(tps.words[pmbus.Cmd.FREQUENCY_SWITCH]) == 650.0
    assert tps.words[pmbus.Cmd.VOUT_MAX] == round(1.3 * 512)
    assert tps.bytes[pmbus.Cmd.IOUT_OC_FAULT_RESPONSE] == 0xC0
    assert tps.bytes[pmbus.Cmd.ON_OFF_CONFIG] == 0x18
    assert vr.faults() == []
    assert "OFF" in pmbus.decode_status_word(vr.status_word())


def test_i2c_tps546_vout_and_telemetry(parts) -> None:
    _, _, tps, bus = parts
    vr = TPS546(bus)
    vr.init()
    vr.set_vout(1.2)
    assert vr.is_on() and tps.output_on
    assert tps.vout == pytest.approx(1.2, abs=1 / 512)
    tps.update(PowerStageInputs(load_w=18.0, vr_temp_c=61.5, vin_nominal=5.0))
    reading = vr.read_all()
    assert reading.vout_v == pytest.approx(1.2, abs=1 / 512)
    assert reading.iout_a == pytest.approx(18.0 / tps.vout, rel=1e-2)
    assert reading.temp_c == pytest.approx(61.5, abs=0.5)
    assert 4.5 < reading.vin_v <= 5.0
    assert reading.pout_w == pytest.approx(18.0, rel=2e-2)
    with pytest.raises(ValueError, match="outside"):
        vr.set_vout(2.5)
    vr.set_vout(0)
    assert not tps.output_on


def test_i2c_tps546_over_temperature_latches_and_clears(parts) -> None:
    _, _, tps, bus = parts
    vr = TPS546(bus)
    vr.init()
    vr.set_vout(1.2)
    tps.update(PowerStageInputs(load_w=10.0, vr_temp_c=150.0))
    assert not vr.is_on()
    assert "TEMPERATURE" in vr.faults()
    tps.update(PowerStageInputs(load_w=0.0, vr_temp_c=40.0))
    vr.clear_faults()
    assert vr.faults() == []
    vr.set_vout(1.2)
    assert vr.is_on()


def test_i2c_tps546_missing_part_is_sensor_error(parts) -> None:
    _, _, tps, bus = parts
    tps.present = False
    with pytest.raises(SensorError):
        TPS546(bus).read_vin()


def test_i2c_power_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="vout_min"):
        PowerLimits(vout_min_v=2.0, vout_max_v=1.0)
    hex_limits = get_board("hex-bm1370").power_limits()
    assert hex_limits.vout_min_v == pytest.approx(3.0)
    assert hex_limits.vin_ov_fault_v == pytest.approx(15.6)

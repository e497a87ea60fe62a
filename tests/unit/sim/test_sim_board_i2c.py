"""The real I2C part drivers run unmodified against the simulated board's bus."""

from __future__ import annotations

import pytest

from drivers.i2c.bus import I2CError, SensorError, SMBus
from drivers.i2c.emc2101 import EMC2101
from drivers.i2c.pmbus import decode_linear11, encode_linear11
from drivers.i2c.tps546 import TPS546, PowerLimits
from drivers.sim import testing as host
from drivers.sim.board import SimBoard, SimBoardConfig
from drivers.sim.chips import pll_value
from drivers.sim.i2c_bus import SimI2CBus

HEADER = bytes(4) + bytes(range(32)) + bytes(range(32, 64)) + bytes(12)


def board(**kw) -> SimBoard:
    return SimBoard(SimBoardConfig(model="BM1370", chips=1, hashrate_hps=1000, seed=1, **kw))


def run(b: SimBoard, seconds: float, start: float = 0.0, step: float = 0.25) -> float:
    t = start
    b.advance(t)
    while t < start + seconds:
        t += step
        b.advance(t)
    return t


def hashing_board(**kw) -> SimBoard:
    b = board(**kw)
    b.chain.feed(host.bm136x_job(0x18, HEADER))
    return b


def test_bus_is_an_smbus():
    assert isinstance(board().i2c, SMBus)


def test_missing_device_and_register_nack():
    bus = board().i2c
    with pytest.raises(I2CError):
        bus.read_byte_data(0x50, 0x00)
    with pytest.raises(I2CError):
        bus.read_byte_data(0x4C, 0x77)
    with pytest.raises(ValueError):
        bus.write_byte_data(0x4C, 0x4C, 300)


def test_emc2101_driver_identifies_and_controls_fan_with_lag():
    b = board()
    emc = EMC2101(b.i2c)
    assert emc.identify() == "EMC2101"
    emc.init(duty=0.5)
    t = run(b, 0.5)
    early = emc.fan_rpm()
    t = run(b, 20, start=t)
    settled = emc.fan_rpm()
    assert early < settled
    assert settled == pytest.approx(0.5 * b.physics.params.fan_max_rpm, rel=0.05)
    assert emc.fan_duty() == pytest.approx(32 / 63)


def test_emc2101_external_diode_reads_chip_temperature():
    b = hashing_board()
    emc = EMC2101(b.i2c)
    emc.init(duty=0.3)
    run(b, 120)
    chip_temp = b.physics.state.chips[0].temp_c
    assert emc.external_temp() == pytest.approx(chip_temp, abs=0.13)
    assert chip_temp > 30
    assert 25 <= emc.internal_temp() <= chip_temp


def test_more_fan_duty_gives_lower_reported_temperature():
    readings = []
    for duty in (0.3, 1.0):
        b = hashing_board()
        emc = EMC2101(b.i2c)
        emc.init(duty=duty)
        run(b, 150)
        readings.append(emc.external_temp())
    assert readings[0] > readings[1] + 2


def test_fan_stall_fault_is_seen_by_the_driver():
    b = board()
    emc = EMC2101(b.i2c)
    emc.init(duty=1.0)
    t = run(b, 10)
    assert emc.fan_rpm() > 1000
    b.faults.apply("fan-stall")
    run(b, 30, start=t)
    assert emc.tach_count() == 0xFFFF
    with pytest.raises(SensorError):
        emc.fan_rpm()
    assert b.physics.state.chips[0].temp_c > 30  # heating up without airflow


def test_sensor_failure_fault_raises_sensor_error():
    b = board()
    emc = EMC2101(b.i2c)
    run(b, 1)
    emc.external_temp()
    b.faults.apply("sensor-fail")
    run(b, 1, start=1)
    with pytest.raises(SensorError):
        emc.external_temp()
    assert emc.status() & 0x04  # DIODE_FAULT
    b.faults.apply("sensor-fail", on=False)
    run(b, 1, start=2)
    emc.external_temp()


def test_tps546_driver_sets_voltage_and_reads_telemetry():
    b = hashing_board()
    vr = TPS546(b.i2c)
    vr.init()
    run(b, 1)
    assert not vr.is_on()
    assert not b.chain.powered  # no core voltage, chips dark
    vr.set_vout(1.15)
    run(b, 5, start=1)
    assert b.chain.powered
    reading = vr.read_all()
    assert reading.vout_v == pytest.approx(1.15, abs=0.003)
    assert 4.5 < reading.vin_v <= 5.0
    assert reading.iout_a == pytest.approx(b.physics.state.power_out_w / 1.15, rel=0.02)
    assert reading.temp_c > 25
    assert vr.faults() == []
    vr.set_vout(1.05)
    assert vr.read_vout() == pytest.approx(1.05, abs=0.003)


def test_power_stage_off_silences_the_chain():
    b = board()
    vr = TPS546(b.i2c)
    b.chain.feed(host.read_register(0x00))
    assert b.chain.take_output()
    vr.off()
    run(b, 0.5)
    b.chain.feed(host.read_register(0x00))
    assert b.chain.take_output() == b""


def test_over_current_fault_latches_off_until_cleared():
    b = hashing_board()
    vr = TPS546(b.i2c, limits=PowerLimits())
    vr.init()
    vr.set_vout(1.15)
    t = run(b, 1)
    assert b.chain.powered
    b.faults.apply("over-current")
    t = run(b, 0.5, start=t)
    assert not vr.is_on()
    assert not b.chain.powered
    assert "IOUT_OC_FAULT" in vr.faults()
    # Switching on again while the fault persists trips again; after it is gone it holds.
    vr.clear_faults()
    vr.set_vout(1.15)
    t = run(b, 0.5, start=t)
    assert not vr.is_on()
    b.faults.apply("over-current", on=False)
    vr.clear_faults()
    vr.set_vout(1.15)
    run(b, 0.5, start=t)
    assert vr.is_on() and b.chain.powered
    assert vr.faults() == []


def test_block_read_and_linear11_round_trip():
    bus: SimI2CBus = board().i2c
    assert bytes(bus.read_i2c_block_data(0x24, 0x99, 3)) == b"\x02TI"
    for value in (0.0, 1.15, 25.0, 145.0, -3.5, 650.0):
        assert decode_linear11(encode_linear11(value)) == pytest.approx(value, rel=0.002, abs=0.002)


def test_chip_error_rate_follows_physics():
    b = hashing_board()
    run(b, 2)
    low = b.chain.chips[0].error_rate
    b.chain.feed(host.write_register(0x08, pll_value(b.chain.model, 700.0)))  # overclocked
    run(b, 2, start=2)
    assert b.chain.chips[0].frequency_mhz == pytest.approx(700, abs=5)
    assert b.chain.chips[0].error_rate > 10 * low


def test_far_overclock_trips_the_power_stage():
    b = hashing_board()
    b.chain.feed(host.write_register(0x08, pll_value(b.chain.model, 1500.0)))
    run(b, 2)
    assert b.tps546.latched_off and not b.chain.powered


@pytest.mark.parametrize("model", ["BM1366", "BM1368", "BM1370", "BM1397"])
@pytest.mark.parametrize("chips", [1, 2, 3, 4, 6])
def test_default_boards_run_at_rated_load_without_tripping(model, chips):
    b = SimBoard(SimBoardConfig(model=model, chips=chips, hashrate_hps=100, seed=1))
    b.chain.feed(host.bm136x_job(0x18, HEADER) if model != "BM1397" else host.bm1397_job(4, HEADER))
    run(b, 60, step=1.0)
    assert b.chain.powered and not b.tps546.latched_off
    assert b.vcore == pytest.approx(b.chain.model.default_mv / 1000, abs=0.003)
    assert max(c.temp_c for c in b.physics.state.chips) < 75


def test_voltage_domains_must_divide_chips():
    from drivers.sim.errors import SimConfigError

    with pytest.raises(SimConfigError):
        SimBoard(SimBoardConfig(chips=4, voltage_domains=3))
    assert SimBoardConfig(chips=4).domains == 2
    assert SimBoardConfig(chips=3).domains == 3

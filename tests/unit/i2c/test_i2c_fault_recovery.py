"""Every I2C-level fault the simulated board can show ends flagged, counted and recovered.

The real EMC2101 / TPS546 drivers run against the simulated board (physics on simulated
time), the faults switched exactly as ``blvm sim fault NAME`` switches them.
"""

from __future__ import annotations

import pytest

from drivers.i2c.bus import FaultLog, SensorError
from drivers.i2c.emc2101 import EMC2101
from drivers.i2c.tps546 import TPS546, PowerLimits, PowerStageFault
from drivers.sim import testing as host
from drivers.sim.board import SimBoard, SimBoardConfig

HEADER = bytes(4) + bytes(range(32)) + bytes(range(32, 64)) + bytes(12)


def make_board() -> SimBoard:
    b = SimBoard(SimBoardConfig(model="BM1370", chips=1, hashrate_hps=1000, seed=4))
    b.chain.feed(host.bm136x_job(0x18, HEADER))  # chips busy: real load on the stage
    return b


class SimTime:
    def __init__(self, board: SimBoard) -> None:
        self.board, self.t = board, 0.0
        board.advance(self.t)

    def run(self, seconds: float, step: float = 0.25) -> None:
        end = self.t + seconds
        while self.t < end:
            self.t += step
            self.board.advance(self.t)


def test_i2c_fan_stall_is_flagged_counted_and_clears():
    b = make_board()
    clock = SimTime(b)
    fan = EMC2101(b.i2c)
    fan.init(duty=1.0)
    clock.run(10)
    assert fan.fan_rpm() > 1000 and fan.fault_log.total == 0

    b.faults.apply("fan-stall")
    clock.run(30)  # the rotor coasts down, then the tach reads stalled
    for _ in range(3):
        with pytest.raises(SensorError, match="fan stalled") as info:
            fan.fan_rpm()
        assert info.value.kind == "fan-stall"
    with pytest.raises(SensorError):
        fan.fan()  # the combined reading fails too, counted once
    assert fan.fault_log.counts == {"fan-stall": 4}
    assert "stalled" in fan.fault_log.last_error

    b.faults.apply("fan-stall", on=False)
    clock.run(20)  # spin-up lag
    assert fan.fan_rpm() > 1000
    assert fan.fan().duty == pytest.approx(1.0)
    assert fan.fault_log.total == 4  # recovery is not an error; the history stays


def test_i2c_sensor_failure_is_flagged_counted_and_clears():
    b = make_board()
    clock = SimTime(b)
    fan = EMC2101(b.i2c)
    fan.init(duty=0.6)
    clock.run(2)
    before = fan.external_temp()
    assert 20.0 < before < 100.0

    b.faults.apply("sensor-fail")
    clock.run(1)
    with pytest.raises(SensorError, match="diode open") as info:
        fan.external_temp()
    assert info.value.kind == "diode-open"
    assert fan.fan_rpm() > 0  # the fan side of the part still works
    assert fan.fault_log.counts == {"diode-open": 1}

    b.faults.apply("sensor-fail", on=False)
    clock.run(1)
    assert fan.external_temp() == pytest.approx(before, abs=15.0)
    assert fan.fault_log.as_dict()["total"] == 1


def test_i2c_over_current_latches_off_is_counted_once_and_recovers():
    b = make_board()
    clock = SimTime(b)
    vr = TPS546(b.i2c, limits=PowerLimits())
    vr.init()
    vr.set_vout(1.15)
    clock.run(1)
    vr.check()  # healthy: no exception
    assert b.chain.powered and vr.fault_log.total == 0

    b.faults.apply("over-current")
    clock.run(0.5)
    for _ in range(2):  # a persisting fault is flagged on every check, counted once
        with pytest.raises(PowerStageFault, match=r"IOUT_OC_FAULT.*latched off") as info:
            vr.check()
    assert isinstance(info.value, SensorError) and info.value.kind == "IOUT_OC_FAULT"
    assert vr.fault_log.counts["IOUT_OC_FAULT"] == 1
    assert not vr.is_on() and not b.chain.powered  # latched off: the chips lost power

    # Re-enabling while the cause persists trips again, and that trip counts anew.
    vr.clear_faults()
    vr.set_vout(1.15)
    clock.run(0.5)
    with pytest.raises(PowerStageFault):
        vr.check()
    assert vr.fault_log.counts["IOUT_OC_FAULT"] == 2 and not vr.is_on()

    b.faults.apply("over-current", on=False)
    vr.clear_faults()
    vr.set_vout(1.15)
    clock.run(1)
    vr.check()
    assert vr.is_on() and b.chain.powered
    reading = vr.read_all()
    assert reading.vout_v == pytest.approx(1.15, abs=0.003)
    assert 0.0 < reading.iout_a < PowerLimits().iout_oc_warn_a
    assert vr.fault_log.counts["IOUT_OC_FAULT"] == 2


def test_i2c_missing_part_counts_bus_faults_and_recovers():
    b = make_board()
    fan, vr = EMC2101(b.i2c), TPS546(b.i2c)
    b.emc2101.present = False
    b.tps546.present = False
    with pytest.raises(SensorError, match="failed"):
        fan.internal_temp()
    with pytest.raises(SensorError, match="failed"):
        vr.read_vin()
    assert fan.fault_log.counts == {"bus": 1} and vr.fault_log.counts == {"bus": 1}
    b.emc2101.present = b.tps546.present = True
    assert fan.internal_temp() > 0 and vr.read_vin() > 4.0


def test_i2c_fault_log_is_plain_data():
    log = FaultLog()
    log.record("fan-stall", "stalled")
    log.record("fan-stall", "stalled again")
    assert log.as_dict() == {
        "total": 2,
        "by_kind": {"fan-stall": 2},
        "last_error": "stalled again",
    }

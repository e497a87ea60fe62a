"""Board sensor readout (read-only) over the simulated I2C parts, and `blvm hw boards`."""

from __future__ import annotations

import json

from appliance.cli import main
from drivers.boards import BOARDS, get_board
from drivers.boards.sensors import read_board_sensors, sensor_errors
from drivers.sim.faults import FaultState
from drivers.sim.i2c_bus import PowerStageInputs, SimEMC2101, SimI2CBus, SimTPS546


class _CountingBus(SimI2CBus):
    """The simulator's bus, recording whether anything was written."""

    writes = 0

    def write_byte_data(self, addr: int, reg: int, value: int) -> None:
        self.writes += 1
        super().write_byte_data(addr, reg, value)

    def write_word_data(self, addr: int, reg: int, value: int) -> None:
        self.writes += 1
        super().write_word_data(addr, reg, value)


def _board_bus(vout: float, on: bool = True):
    faults = FaultState()
    emc, tps = SimEMC2101(faults), SimTPS546(faults, vout, on, 12.0)
    return faults, emc, tps, _CountingBus({0x4C: emc, 0x24: tps})


def test_boards_sensor_readout_is_read_only_and_complete() -> None:
    board = get_board("hex-bm1370")
    _, emc, tps, bus = _board_bus(3.45)
    emc.update(external_c=61.0, internal_c=40.0, fan_rpm=4500.0)
    tps.update(PowerStageInputs(load_w=60.0, vr_temp_c=55.0, vin_nominal=12.0))
    reading = read_board_sensors(board, bus)
    assert bus.writes == 0
    assert sensor_errors(reading) == []
    assert reading["fan"]["rpm"] == 4500 and reading["fan"]["chip_temp_c"] == 61.0
    assert reading["power"]["vcore_mv"] == 1150  # 3.45 V over 3 series domains
    assert reading["power"]["on"] is True


def test_boards_sensor_readout_reports_each_failure() -> None:
    board = get_board("bitaxe-gamma")
    faults, emc, tps, bus = _board_bus(1.15)
    faults.sensor_failed = True
    emc.update(external_c=50.0, internal_c=30.0, fan_rpm=0.0)
    tps.present = False
    errors = sensor_errors(read_board_sensors(board, bus))
    assert any(e.startswith("fan.rpm") for e in errors)
    assert any(e.startswith("fan.chip_temp_c") and "open" in e for e in errors)
    assert any(e.startswith("power.vin_v") for e in errors)


def test_boards_cli_lists_every_definition(capsys) -> None:
    assert main(["hw", "boards", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in data["boards"]] == [b.name for b in BOARDS]
    stick = next(b for b in data["boards"] if b["name"] == "compac-f")
    assert stick["usb_id"] == "0403:6015" and stick["power"] is None

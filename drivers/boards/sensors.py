"""Read every sensor a board definition lists, without changing anything on the board.

Used by ``blvm hw sensors`` for diagnostics. Read-only on purpose: it may run while the
thermal guard owns the parts, so it writes no register and skips the EMC2101 status
register (reading it clears latched alarm bits the guard may be waiting for). Each value
is either a number or, when the part cannot be trusted, an error string.
"""

from __future__ import annotations

from typing import Any

from drivers.boards.model import BoardDef
from drivers.i2c.bus import I2CError, SMBus
from drivers.i2c.emc2101 import EMC2101
from drivers.i2c.tps546 import TPS546


def _try(fn: Any) -> Any:
    try:
        return fn()
    except (I2CError, ValueError) as exc:  # SensorError is an I2CError
        return {"error": str(exc)}


def read_board_sensors(board: BoardDef, bus: SMBus) -> dict[str, Any]:
    """Fan, chip-diode and power-stage readings keyed by part, as plain data."""
    out: dict[str, Any] = {"board": board.name}
    if board.fan is not None:
        fan = EMC2101(bus, board.fan.address)
        out["fan"] = {
            "address": f"0x{board.fan.address:02X}",
            "part": _try(fan.identify),
            "rpm": _try(fan.fan_rpm),
            "duty_percent": _try(lambda: round(fan.fan_duty() * 100, 1)),
            "chip_temp_c": _try(fan.external_temp),
            "board_temp_c": _try(fan.internal_temp),
        }
    if board.power is not None:
        vr = TPS546(bus, board.power.address, board.power_limits())
        out["power"] = {
            "address": f"0x{board.power.address:02X}",
            "on": _try(vr.is_on),
            "vin_v": _try(vr.read_vin),
            "vout_v": _try(vr.read_vout),
            "vcore_mv": _try(lambda: round(vr.read_vout() * 1000 / board.domains)),
            "iout_a": _try(vr.read_iout),
            "vr_temp_c": _try(vr.read_temperature),
            "faults": _try(vr.faults),
        }
    return out


def sensor_errors(reading: dict[str, Any]) -> list[str]:
    """Every error string in a :func:`read_board_sensors` result."""
    errors = []
    for part in ("fan", "power"):
        for key, value in reading.get(part, {}).items():
            if isinstance(value, dict) and "error" in value:
                errors.append(f"{part}.{key}: {value['error']}")
    return errors

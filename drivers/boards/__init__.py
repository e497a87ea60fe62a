"""Board definitions as data, and the factory that finds one by name or by what was found."""

from drivers.boards.catalog import BOARDS, CHIPS
from drivers.boards.factory import (
    BoardError,
    asic_spec,
    board_names,
    chip_by_id,
    get_board,
    identify,
)
from drivers.boards.model import BoardDef, I2CPart, SafeLimits, TransportKind, UsbId

__all__ = [
    "BOARDS",
    "CHIPS",
    "BoardDef",
    "BoardError",
    "I2CPart",
    "SafeLimits",
    "TransportKind",
    "UsbId",
    "asic_spec",
    "board_names",
    "chip_by_id",
    "get_board",
    "identify",
]

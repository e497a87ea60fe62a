"""Find a board definition by name, or identify one from what a scan found."""

from __future__ import annotations

from dataclasses import replace

from drivers.asic.bm13xx.chips import ChipSpec, get_chip
from drivers.boards.catalog import BOARDS, CHIPS
from drivers.boards.model import BoardDef, TransportKind, UsbId


class BoardError(LookupError):
    """No board definition matches."""


def _index() -> dict[str, BoardDef]:
    table: dict[str, BoardDef] = {}
    for board in BOARDS:
        for key in (board.name, *board.aliases):
            table[key.lower()] = board
    return table


_BY_NAME = _index()


def board_names() -> list[str]:
    return [b.name for b in BOARDS]


def get_board(name: str) -> BoardDef:
    """A board by name or alias (case-insensitive)."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise BoardError(
            f"unknown board {name!r}; known boards: {', '.join(board_names())}"
        ) from None


def asic_spec(board: BoardDef) -> ChipSpec:
    """The ASIC driver's chip spec, adjusted for this board's UART (e.g. the Compac F's
    FTDI cannot do 3.125 Mbaud, so its BM1397 is set to 1.5625 Mbaud, host 1.5 Mbaud)."""
    spec = get_chip(board.model)
    if board.fast_baud_value is None and board.fast_baud is None:
        return spec
    return replace(
        spec,
        fast_baud=board.host_fast_baud,
        fast_baud_value=board.fast_baud_value or spec.fast_baud_value,
    )


def chip_by_id(chip_id: int) -> str | None:
    """Chip model from the 16-bit id the chips report in register 0x00."""
    for chip in CHIPS.values():
        if chip.chip_id == chip_id:
            return chip.model
    return None


def identify(
    model: str,
    chip_count: int,
    usb_id: UsbId | tuple[int, int] | None = None,
) -> BoardDef:
    """The board that has ``chip_count`` x ``model`` chips (behind ``usb_id``, if USB).

    An exact table match wins. A chain we have no row for still gets a usable
    definition: the closest board with the same chip, with its count set to
    what was found (named ``generic-…`` so operators see it). Its voltage-domain
    layout is a guess, so it gets no power part: nobody drives a regulator from
    a guessed series stack.
    """
    model = model.upper()
    if model not in CHIPS:
        raise BoardError(f"unknown chip model {model!r}; known: {', '.join(CHIPS)}")
    if usb_id is not None and not isinstance(usb_id, UsbId):
        usb_id = UsbId(*usb_id)
    want = TransportKind.USB if usb_id is not None else TransportKind.SERIAL
    candidates = [b for b in BOARDS if b.model == model and b.transport is want]
    if usb_id is not None:
        candidates = [b for b in candidates if b.usb_id == usb_id]
    for board in candidates:
        if board.chip_count == chip_count:
            return board
    if not candidates or chip_count < 1:
        raise BoardError(f"no board definition for {chip_count} x {model} over {want.value}")
    template = min(candidates, key=lambda b: abs(b.chip_count - chip_count))
    per_domain = template.chips_per_domain if chip_count % template.chips_per_domain == 0 else 1
    return replace(
        template,
        name=f"generic-{model.lower()}-x{chip_count}",
        description=(
            f"{chip_count} x {model} (no exact definition; limits from {template.name}, "
            "no Vcore control)"
        ),
        chip_count=chip_count,
        chips_per_domain=per_domain,
        power=None,
        aliases=(),
    )

"""Board table sanity and the lookup/identify factory."""

from __future__ import annotations

import pytest

from drivers.boards import (
    BOARDS,
    CHIPS,
    BoardError,
    TransportKind,
    UsbId,
    chip_by_id,
    get_board,
    identify,
)


@pytest.mark.parametrize("board", BOARDS, ids=lambda b: b.name)
def test_boards_every_definition_is_consistent(board) -> None:
    assert board.problems() == []
    lim = board.limits
    lo, hi = board.vout_range()
    assert lo <= board.vout_for(board.default_vcore_mv) <= hi
    assert board.chip.model in CHIPS
    assert lim.max_chip_temp_c < lim.max_vr_temp_c + 40
    assert board.expected_ghs() > 0


def test_boards_names_and_aliases_are_unique() -> None:
    keys = [k.lower() for b in BOARDS for k in (b.name, *b.aliases)]
    assert len(keys) == len(set(keys))


def test_boards_cover_the_required_classes() -> None:
    models = {(b.model, b.chip_count, b.transport) for b in BOARDS}
    for chip in ("BM1366", "BM1368", "BM1370", "BM1397"):
        assert (chip, 1, TransportKind.SERIAL) in models
    assert any(b.chip_count > 1 and b.domains > 1 for b in BOARDS)
    stick = get_board("compac-f")
    assert stick.transport is TransportKind.USB and stick.usb_id == UsbId(0x0403, 0x6015)
    assert stick.host_fast_baud == 1_500_000


def test_boards_multi_domain_vout() -> None:
    hex_board = get_board("hex-bm1370")
    assert hex_board.domains == 3
    assert hex_board.vout_for(1150) == pytest.approx(3.45)
    lo, hi = hex_board.vout_range()
    assert 2.5 <= lo < hi <= 4.5  # the multi-domain TPS546 range from the reference


def test_boards_lookup() -> None:
    assert get_board("GAMMA").name == "bitaxe-gamma"
    with pytest.raises(BoardError, match="known boards"):
        get_board("antminer-s19")


def test_boards_identify_exact_and_generic() -> None:
    assert identify("BM1370", 1).name == "bitaxe-gamma"
    assert identify("bm1370", 4).name == "quad-bm1370"
    assert identify("BM1397", 1, usb_id=(0x0403, 0x6015)).name == "compac-f"
    assert identify("BM1397", 1).name == "bitaxe-max"
    generic = identify("BM1370", 5)
    assert generic.name == "generic-bm1370-x5"
    assert generic.chip_count == 5 and generic.power is None
    assert generic.problems() == []
    with pytest.raises(BoardError):
        identify("BM1366", 1, usb_id=(0x10C4, 0xEA60))
    with pytest.raises(BoardError):
        identify("BM9999", 1)


def test_boards_chip_by_id() -> None:
    assert chip_by_id(0x1370) == "BM1370"
    assert chip_by_id(0x1397) == "BM1397"
    assert chip_by_id(0x1234) is None

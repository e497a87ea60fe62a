"""Wire types: byte layouts, bounds on encode and decode, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sv2 import types as t
from protocols.sv2.errors import DecodeError, EncodeError
from tests.unit.sv2.sv2_strategies import strategy_for

ALL_TYPES = [
    t.U8, t.U16, t.U24, t.U32, t.U64, t.F32, t.BOOL, t.U256, t.PUBKEY, t.SIGNATURE, t.MAC,
    t.STR0_255, t.B0_32, t.B0_255, t.B0_64K, t.B0_16M, t.BYTES,
    t.Seq0_255(t.U256), t.Seq0_64K(t.U16), t.Seq0_64K(t.B0_16M), t.Option(t.U32),
]  # fmt: skip


@pytest.mark.parametrize("ftype", ALL_TYPES, ids=repr)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_sv2_type_roundtrip(ftype: t.FieldType, data: st.DataObject) -> None:
    value = data.draw(strategy_for(ftype))
    encoded = ftype.encode(value)
    if ftype.fixed_size is not None:
        assert len(encoded) == ftype.fixed_size
    assert ftype.decode(encoded) == value


def test_sv2_integer_layouts_are_little_endian() -> None:
    assert t.U16.encode(0x0102) == bytes.fromhex("0201")
    assert t.U24.encode(0x010203) == bytes.fromhex("030201")
    assert t.U32.encode(0x01020304) == bytes.fromhex("04030201")
    assert t.U64.encode(1) == bytes.fromhex("0100000000000000")
    assert t.F32.encode(1.0) == bytes.fromhex("0000803f")


@pytest.mark.parametrize(
    ("ftype", "value"),
    [(t.U8, 256), (t.U16, -1), (t.U24, 1 << 24), (t.U32, 1 << 32), (t.U64, 1 << 64), (t.U32, "1")],
)
def test_sv2_integer_range_enforced(ftype: t.FieldType, value: object) -> None:
    with pytest.raises(EncodeError):
        ftype.encode(value)


def test_sv2_variable_lengths_enforced_on_encode() -> None:
    with pytest.raises(EncodeError):
        t.B0_32.encode(bytes(33))
    with pytest.raises(EncodeError):
        t.B0_255.encode(bytes(256))
    with pytest.raises(EncodeError):
        t.B0_64K.encode(bytes(65536))
    with pytest.raises(EncodeError):
        t.STR0_255.encode("é" * 128)  # 256 UTF-8 bytes
    with pytest.raises(EncodeError):
        t.Seq0_255(t.U8).encode(tuple(range(256)))
    with pytest.raises(EncodeError):
        t.U256.encode(bytes(31))
    assert len(t.B0_16M.encode(bytes(70000))) == 70003


def test_sv2_declared_length_above_maximum_rejected_on_decode() -> None:
    # B0_32 with a declared length of 33 and 33 bytes present: the type maximum wins.
    with pytest.raises(DecodeError, match="exceeds maximum"):
        t.B0_32.decode(bytes([33]) + bytes(33))


def test_sv2_truncated_values_rejected() -> None:
    for ftype, data in [
        (t.U32, b"\x01\x02"),
        (t.B0_64K, b"\x05\x00abc"),
        (t.Seq0_64K(t.U256), b"\x02\x00" + bytes(40)),
        (t.Option(t.U32), b"\x01\x00"),
        (t.STR0_255, b"\x04ab"),
    ]:
        with pytest.raises(DecodeError):
            ftype.decode(data)


def test_sv2_option_and_bool_encodings() -> None:
    opt = t.Option(t.U32)
    assert opt.encode(None) == b"\x00"
    assert opt.encode(7) == bytes.fromhex("0107000000")
    with pytest.raises(DecodeError):
        opt.decode(b"\x02\x00\x00\x00\x00")
    assert t.BOOL.encode(True) == b"\x01"
    # Only the low bit carries the value.
    assert t.BOOL.decode(b"\x03") is True
    assert t.BOOL.decode(b"\x02") is False
    with pytest.raises(EncodeError):
        t.BOOL.encode(1)


def test_sv2_str_keeps_non_utf8_bytes() -> None:
    raw = b"\xff\xfeworker"
    value = t.STR0_255.decode(bytes([len(raw)]) + raw)
    assert t.STR0_255.encode(value) == bytes([len(raw)]) + raw


def test_sv2_sequence_layout() -> None:
    assert t.Seq0_64K(t.U16).encode((1, 2)) == bytes.fromhex("020001000200")
    assert t.Seq0_255(t.U256).encode((bytes(32),)) == b"\x01" + bytes(32)
    assert t.Seq0_64K(t.B0_16M).encode((b"ab",)) == bytes.fromhex("0100020000") + b"ab"

"""Hypothesis strategies derived from the SV2 field specs (one per wire type, one per message)."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from protocols.sv2 import types as t
from protocols.sv2.messages.base import Message

_INT_MAX = {"U8": 0xFF, "U16": 0xFFFF, "U24": 0xFFFFFF, "U32": 0xFFFFFFFF, "U64": (1 << 64) - 1}


def _f32() -> st.SearchStrategy[float]:
    # Values exactly representable as IEEE-754 binary32, so encode/decode is an identity.
    return st.floats(width=32, allow_nan=False)


def _str255() -> st.SearchStrategy[str]:
    def fits(s: str) -> bool:
        return len(s.encode("utf-8", "surrogateescape")) <= 255

    return st.one_of(
        st.text(max_size=80).filter(fits),
        # Arbitrary (possibly non-UTF-8) bytes must survive too.
        st.binary(max_size=255).map(lambda b: b.decode("utf-8", "surrogateescape")),
    )


def strategy_for(ftype: t.FieldType, small: bool = True) -> st.SearchStrategy:
    """A strategy producing valid Python values for a wire type."""
    name = ftype.name
    if name in _INT_MAX:
        return st.integers(0, _INT_MAX[name])
    if name == "F32":
        return _f32()
    if name == "BOOL":
        return st.booleans()
    if ftype.fixed_size is not None and ftype.struct_code and ftype.struct_code.endswith("s"):
        n = ftype.fixed_size
        return st.binary(min_size=n, max_size=n)
    if name == "STR0_255":
        return _str255()
    if name == "BYTES":
        return st.binary(max_size=64)
    if isinstance(ftype, t._VarBytes):
        cap = ftype.max_len if not small else min(ftype.max_len, 300)
        return st.binary(max_size=cap)
    if isinstance(ftype, t._Seq):
        cap = min(ftype.max_len, 8 if small else ftype.max_len)
        return st.lists(strategy_for(ftype.item, small), max_size=cap).map(tuple)
    if isinstance(ftype, t._Option):
        return st.none() | strategy_for(ftype.item, small)
    raise AssertionError(f"no strategy for {ftype!r}")


def message_strategy(cls: type[Message]) -> st.SearchStrategy[Message]:
    return st.builds(cls, *(strategy_for(ftype) for _, ftype in cls.FIELDS))


def f32_roundtrips(value: float) -> bool:
    return struct.unpack("<f", struct.pack("<f", value))[0] == value

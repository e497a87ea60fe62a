"""SHA-256 midstates (BM1397 jobs) checked against hashlib, and version stepping."""

from __future__ import annotations

import hashlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.asic.bm13xx import midstate


@settings(max_examples=200, deadline=None)
@given(header=st.binary(min_size=80, max_size=80))
def test_midstate_then_tail_equals_hashlib(header):
    words = midstate.midstate_words(header[:64])
    assert midstate.sha256_from_midstate(words, header[64:]) == hashlib.sha256(header).digest()


@settings(max_examples=100, deadline=None)
@given(msg=st.binary(max_size=55))
def test_single_block_compression(msg):
    block = msg + b"\x80" + b"\x00" * (55 - len(msg)) + struct.pack(">Q", len(msg) * 8)
    state = midstate.compress(midstate.SHA256_IV, block)
    assert struct.pack(">8I", *state) == hashlib.sha256(msg).digest()


def test_wire_form_is_reversed_words():
    first64 = bytes(range(64))
    words = midstate.midstate_words(first64)
    wire = midstate.midstate_wire(first64)
    assert wire[:4] == words[7].to_bytes(4, "big") and wire[28:] == words[0].to_bytes(4, "big")
    assert midstate.words_from_wire(wire) == words


def test_next_version_steps_inside_mask():
    mask = 0x1FFFE000
    assert midstate.next_version(0x20000000, mask) == 0x20002000
    assert midstate.next_version(0x20002000, mask) == 0x20004000
    assert midstate.next_version(0x3FFFE000, mask) == 0x20000000  # wraps, bit 29 kept
    assert midstate.next_version(0x20000000, 0) == 0x20000000
    assert midstate.rolled_versions(0x20000000, mask, 4) == (
        0x20000000,
        0x20002000,
        0x20004000,
        0x20006000,
    )
    # a sparse mask: carries jump over unmasked bits
    assert midstate.next_version(0x00002000, 0x0000A000) == 0x00008000


@settings(max_examples=100, deadline=None)
@given(first64=st.binary(min_size=64, max_size=64))
def test_fast_and_plain_midstates_agree(first64):
    assert midstate.midstate_words(first64) == midstate.midstate_words_py(first64)

"""SHA-256 state work (BM1397 midstates, the sim's nonce scan) checked against hashlib."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import sha256_state


@settings(max_examples=200, deadline=None)
@given(header=st.binary(min_size=80, max_size=80))
def test_midstate_then_tail_equals_hashlib(header):
    words = sha256_state.midstate_words(header[:64])
    assert sha256_state.sha256_from_midstate(words, header[64:]) == hashlib.sha256(header).digest()


@settings(max_examples=100, deadline=None)
@given(msg=st.binary(max_size=55))
def test_single_block_compression(msg):
    block = msg + b"\x80" + b"\x00" * (55 - len(msg)) + struct.pack(">Q", len(msg) * 8)
    state = sha256_state.compress(sha256_state.SHA256_IV, block)
    assert struct.pack(">8I", *state) == hashlib.sha256(msg).digest()


@settings(max_examples=100, deadline=None)
@given(first64=st.binary(min_size=64, max_size=64))
def test_fast_and_plain_midstates_agree(first64):
    assert sha256_state.midstate_words(first64) == sha256_state.midstate_words_py(first64)


def _padded_tail(tail: bytes, total_len: int) -> bytes:
    return tail + b"\x80" + b"\x00" * (55 - len(tail)) + struct.pack(">Q", total_len * 8)


@settings(max_examples=100, deadline=None)
@given(header=st.binary(min_size=80, max_size=80))
def test_block_hasher_finishes_header_on_both_paths(header):
    state = sha256_state.midstate_words(header[:64])
    block = _padded_tail(header[64:], 80)
    expected = hashlib.sha256(header).digest()
    assert sha256_state.block_hasher(state)(block) == expected
    saved = sha256_state._OPENSSL_TRANSFORM
    sha256_state._OPENSSL_TRANSFORM = None
    try:
        assert sha256_state.block_hasher(state)(block) == expected
        assert sha256_state.midstate_words(header[:64]) == state
    finally:
        sha256_state._OPENSSL_TRANSFORM = saved


def test_block_hasher_rejects_short_blocks_and_bad_states():
    hash_block = sha256_state.block_hasher(sha256_state.SHA256_IV)
    with pytest.raises(ValueError):
        hash_block(bytes(63))
    with pytest.raises(ValueError):
        sha256_state.block_hasher((1, 2, 3))
    with pytest.raises(ValueError):
        sha256_state.midstate_words(bytes(65))


@settings(max_examples=100, deadline=None)
@given(
    state=st.tuples(*[st.integers(0, 0xFFFFFFFF)] * 8),
    block=st.binary(min_size=64, max_size=64),
)
def test_block_hasher_matches_plain_compression_from_any_state(state, block):
    expected = struct.pack(">8I", *sha256_state.compress(state, block))
    assert sha256_state.block_hasher(state)(block) == expected

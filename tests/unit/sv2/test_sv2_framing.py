"""Frame header layout and the incremental unencrypted frame decoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sv2.errors import EncodeError, FramingError
from protocols.sv2.framing import (
    CHANNEL_MSG_BIT,
    FrameDecoder,
    decode_header,
    encode_frame,
    encode_header,
)


def test_sv2_header_vector() -> None:
    header = decode_header(bytes.fromhex("010203040506"))
    assert header.extension_type == 0x0201
    assert header.msg_type == 0x03
    assert header.msg_length == 0x060504
    assert not header.channel_msg
    assert encode_header(0x0201, 0x03, 0x060504, False) == bytes.fromhex("010203040506")


def test_sv2_channel_bit() -> None:
    raw = encode_header(0, 0x1A, 24, True)
    assert raw == bytes.fromhex("00801a180000")
    header = decode_header(raw)
    assert header.channel_msg and header.extension == 0 and header.extension_type == CHANNEL_MSG_BIT


def test_sv2_header_range_checks() -> None:
    with pytest.raises(EncodeError):
        encode_header(0, 256, 0, False)
    with pytest.raises(EncodeError):
        encode_header(0, 0, 1 << 24, False)
    with pytest.raises(EncodeError):
        encode_header(0x10000, 0, 0, False)
    with pytest.raises(FramingError):
        decode_header(b"\x00\x00\x00")


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=6),
    cuts=st.lists(st.integers(1, 50), min_size=1, max_size=20),
)
def test_sv2_frame_decoder_any_chunking(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(i, i, p, i % 2 == 0) for i, p in enumerate(payloads))
    dec = FrameDecoder()
    got = []
    pos = 0
    i = 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        dec.feed(stream[pos : pos + n])
        pos += n
        i += 1
        while (frame := dec.next_frame()) is not None:
            got.append(frame)
    assert [f.payload for f in got] == payloads
    assert [f.header.msg_type for f in got] == list(range(len(payloads)))
    assert dec.buffered == 0


def test_sv2_frame_decoder_max_payload() -> None:
    dec = FrameDecoder(max_payload=100)
    dec.feed(encode_header(0, 0x71, 101, False))
    with pytest.raises(FramingError):
        dec.next_frame()
    ok = FrameDecoder(max_payload=100)
    ok.feed(encode_frame(0, 0x71, bytes(100)))
    frame = ok.next_frame()
    assert frame is not None and len(frame.payload) == 100


def test_sv2_frame_decoder_does_not_allocate_for_declared_length() -> None:
    import tracemalloc

    dec = FrameDecoder()
    tracemalloc.start()
    try:
        dec.feed(encode_header(0, 0x56, (1 << 24) - 1, False) + b"x" * 10)
        assert dec.next_frame() is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # a 16 MiB declaration costs nothing until the bytes arrive
    assert dec.buffered == 10

"""Property tests: every frame type round-trips; garbage and corruption never crash decoders."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.asic.bm13xx import frames
from drivers.asic.bm13xx.chips import get_chip
from drivers.asic.errors import FramingError

MODELS = ("BM1366", "BM1368", "BM1370", "BM1397")
u8 = st.integers(0, 255)
u32 = st.integers(0, 0xFFFFFFFF)
h32 = st.binary(min_size=32, max_size=32)


def nonce_replies(spec):
    jobs = sorted({(j * spec.job_id_step) % 128 for j in range(128)})
    return st.builds(
        lambda nonce, job, sub, vbits, mid: (
            frames.nonce_reply(
                spec, nonce, job, sub, vbits << 13 if spec.reply_len == 11 else 0, mid
            ),
            (nonce, job, sub & spec.reply_sub_mask, vbits if spec.reply_len == 11 else 0),
        ),
        u32,
        st.sampled_from(jobs),
        st.integers(0, 15),
        st.integers(0, 0xFFFF),
        u8,
    )


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_nonce_reply_roundtrip(model, data):
    spec = get_chip(model)
    frame, (nonce, job, sub, vbits) = data.draw(nonce_replies(spec))
    reply = frames.parse_reply(spec, frame)
    assert isinstance(reply, frames.NonceReply)
    assert (reply.nonce, reply.job_id, reply.sub, reply.version_bits) == (
        nonce,
        job,
        sub,
        vbits << 13,
    )
    assert frames.ReplyDecoder(spec).feed(frame) == [reply]


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=200, deadline=None)
@given(value=u32, addr=u8, reg=u8)
def test_register_reply_roundtrip(model, value, addr, reg):
    spec = get_chip(model)
    frame = frames.register_reply(spec, value, addr, reg)
    assert len(frame) == spec.reply_len
    assert frames.parse_reply(spec, frame) == frames.RegisterReply(value, addr, reg)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["read", "write", "addr", "inactive"]),
    reg=u8,
    value=u32,
    chip=st.one_of(st.none(), u8),
)
def test_command_roundtrip(kind, reg, value, chip):
    if kind == "read":
        frame = frames.read_register(reg, chip)
    elif kind == "write":
        frame = frames.write_register(reg, value, chip)
    elif kind == "addr":
        frame = frames.set_address(reg)
    else:
        frame = frames.chain_inactive()
    parsed = frames.parse_command(frame)
    assert isinstance(parsed, frames.CommandFrame)
    assert frames.CommandDecoder().feed(frame) == [parsed]
    if kind in ("read", "write"):
        assert parsed.register == reg
        assert parsed.broadcast is (chip is None)
        if chip is not None:
            assert parsed.chip_address == chip
    if kind == "write":
        assert int.from_bytes(parsed.value, "big") == value
        assert parsed.command is frames.Command.WRITE
    if kind == "addr":
        assert parsed.command is frames.Command.SET_ADDRESS and parsed.chip_address == reg


@settings(max_examples=200, deadline=None)
@given(jid=u8, version=u32, prev=h32, merkle=h32, ntime=u32, nbits=u32, start=u32)
def test_header_job_roundtrip(jid, version, prev, merkle, ntime, nbits, start):
    job = frames.HeaderJob(jid, version, prev, merkle, ntime, nbits, start)
    parsed = frames.parse_command(job.frame())
    assert isinstance(parsed, frames.JobFrame) and parsed.job_id == jid
    assert frames.HeaderJob.from_body(parsed.body) == job


@settings(max_examples=200, deadline=None)
@given(
    jid=u8,
    mids=st.lists(h32, min_size=1, max_size=4),
    tail=st.binary(min_size=4, max_size=4),
    ntime=u32,
    nbits=u32,
)
def test_midstate_job_roundtrip(jid, mids, tail, ntime, nbits):
    job = frames.MidstateJob(jid, tuple(mids), tail, ntime, nbits)
    (parsed,) = frames.CommandDecoder().feed(job.frame())
    assert frames.MidstateJob.from_body(parsed.body) == job


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=150, deadline=None)
@given(garbage=st.lists(st.binary(max_size=64), max_size=20))
def test_reply_decoder_survives_garbage(model, garbage):
    dec = frames.ReplyDecoder(get_chip(model))
    fed = 0
    for chunk in garbage:
        for reply in dec.feed(chunk):
            assert isinstance(reply, frames.NonceReply | frames.RegisterReply)
        fed += len(chunk)
    s = dec.stats
    assert s.frames * dec.spec.reply_len + s.garbage_bytes <= fed
    assert len(dec._buf) < dec.spec.reply_len + 1


def _valid_stream(spec, draw):
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        if draw(st.booleans()):
            out.append(frames.register_reply(spec, draw(u32), draw(u8), draw(u8)))
        else:
            out.append(frames.nonce_reply(spec, draw(u32), (i * spec.job_id_step) % 128))
    return out


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_reply_decoder_corruption_and_chunking(model, data):
    spec = get_chip(model)
    frames_list = _valid_stream(spec, data.draw)
    stream = bytearray(b"".join(frames_list))
    # corrupt: flip bits, delete runs (truncation), insert junk (interleaving)
    ops = data.draw(st.integers(0, 4))
    for _ in range(ops):
        op = data.draw(st.sampled_from(["flip", "cut", "junk"]))
        pos = data.draw(st.integers(0, max(0, len(stream) - 1)))
        if op == "flip" and stream:
            stream[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del stream[pos : pos + data.draw(st.integers(1, 8))]
        else:
            stream[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    dec = frames.ReplyDecoder(spec)
    got = []
    prev = 0
    for c in [*cuts, len(stream)]:
        got += dec.feed(bytes(stream[prev:c]))
        prev = c
    for reply in got:
        assert isinstance(reply, frames.NonceReply | frames.RegisterReply)
    if bytes(stream) == b"".join(frames_list):
        assert len(got) == len(frames_list) and dec.stats.dropped == 0
    else:
        # the damage is accounted for somewhere, and each corruption costs at most a
        # couple of otherwise intact frames (a false CRC5 pass can swallow a neighbour)
        s = dec.stats
        assert s.dropped + s.garbage_bytes + len(dec._buf) > 0 or len(got) != len(frames_list)
        intact = sum(1 for f in frames_list if f in bytes(stream))
        assert len(got) >= intact - 2 * ops


@pytest.mark.parametrize("model", MODELS)
def test_single_corrupt_frame_is_dropped_and_counted(model):
    spec = get_chip(model)
    good = [frames.nonce_reply(spec, 0x01020304 + i, 0) for i in range(3)]
    bad = bytearray(good[1])
    bad[4] ^= 0x10
    dec = frames.ReplyDecoder(spec)
    out = dec.feed(good[0] + bytes(bad) + good[2])
    assert [r.nonce for r in out] == [0x01020304, 0x01020306]
    assert dec.stats.crc_errors == 1 and dec.stats.frames == 2


@pytest.mark.parametrize("model", MODELS)
def test_truncated_frame_is_dropped_and_counted(model):
    spec = get_chip(model)
    a, b = (frames.register_reply(spec, v, 0, 0x8C) for v in (1, 2))
    dec = frames.ReplyDecoder(spec)
    out = dec.feed(a[:6] + b)
    assert out == [frames.RegisterReply(2, 0, 0x8C)]
    assert dec.stats.truncated == 1


@pytest.mark.parametrize("model", MODELS)
def test_interleaved_frame_is_dropped_and_counted(model):
    """Frame B lands inside frame A (two writers on one line): B and C survive, A is counted."""
    spec = get_chip(model)
    a, b, c = (frames.register_reply(spec, v, 0, 0x8C) for v in (0xA, 0xB, 0xC))
    dec = frames.ReplyDecoder(spec)
    out = []
    stream = a[:5] + b + a[5:] + c
    for i in range(0, len(stream), 3):  # arriving in small pieces changes nothing
        out += dec.feed(stream[i : i + 3])
    assert [r.value for r in out] == [0xB, 0xC]
    assert dec.stats.truncated == 1 and dec.stats.dropped == 1
    assert dec.stats.garbage_bytes == len(a) - 5


@settings(max_examples=300, deadline=None)
@given(garbage=st.lists(st.binary(max_size=200), max_size=10))
def test_command_decoder_survives_garbage(garbage):
    dec = frames.CommandDecoder()
    for chunk in garbage:
        for frame in dec.feed(chunk):
            assert isinstance(frame, frames.CommandFrame | frames.JobFrame)


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=40))
def test_strict_parsers_raise_only_framing_error(blob):
    for model in MODELS:
        with contextlib.suppress(FramingError):
            frames.parse_reply(get_chip(model), blob)
    with contextlib.suppress(FramingError):
        frames.parse_command(blob)


def test_builders_reject_bad_input():
    with pytest.raises(FramingError):
        frames.command(0x21, b"")
    with pytest.raises(FramingError):
        frames.job_frame(bytes(300))
    with pytest.raises(FramingError):
        frames.HeaderJob.from_body(bytes(10))
    with pytest.raises(FramingError):
        frames.MidstateJob(0, (), b"abcd", 0, 0).body()

"""Fuzzing every decoder: only the package's own errors, and bounded memory."""

from __future__ import annotations

import contextlib
import random
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.sv2 import messages as m
from protocols.sv2 import secp
from protocols.sv2.connection import Role, Sv2Connection
from protocols.sv2.errors import ProtocolError
from protocols.sv2.framing import FrameDecoder, encode_header
from protocols.sv2.noise import Certificate, NoiseInitiator, NoiseResponder
from tests.unit.sv2.sv2_strategies import message_strategy

ALL = m.registered_messages()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@settings(max_examples=120, deadline=None)
@given(data=st.binary(max_size=400))
def test_sv2_fuzz_random_payload(cls: type[m.Message], data: bytes) -> None:
    try:
        decoded = cls.decode_payload(data)
    except ProtocolError:
        return
    # Whatever decodes must re-encode canonically; only BOOL (low bit) and F32 (NaN payloads)
    # may normalise the input bytes.
    reencoded = decoded.encode_payload()
    assert cls.decode_payload(reencoded).encode_payload() == reencoded
    if not any(t.name in ("BOOL", "F32") for _, t in cls.FIELDS):
        assert reencoded == data


@FUZZ
@given(data=st.data())
def test_sv2_fuzz_mutated_valid_frames(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(ALL))
    frame = bytearray(data.draw(message_strategy(cls)).to_frame())
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and frame:
            i = data.draw(st.integers(0, len(frame) - 1))
            frame[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut" and frame:
            i = data.draw(st.integers(0, len(frame) - 1))
            del frame[i : i + data.draw(st.integers(1, 8))]
        else:
            i = data.draw(st.integers(0, len(frame)))
            frame[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    dec = FrameDecoder()
    dec.feed(bytes(frame))
    try:
        while (f := dec.next_frame()) is not None:
            with contextlib.suppress(ProtocolError):
                m.decode_message(f.header.extension_type, f.header.msg_type, f.payload)
    except ProtocolError:
        pass


@FUZZ
@given(stream=st.binary(max_size=2000), piece=st.integers(1, 300))
def test_sv2_fuzz_plain_connection(stream: bytes, piece: int) -> None:
    conn = Sv2Connection.plain(Role.RESPONDER)
    try:
        for i in range(0, len(stream), piece):
            conn.receive_data(stream[i : i + piece])
            while conn.next_event() is not None:
                pass
    except ProtocolError:
        pass


def _pki():
    r = random.Random(21)
    authority, static = r.randbytes(32), r.randbytes(32)
    cert = Certificate.issue(
        authority, secp.xonly_from_secret(static), 0, 2**32 - 1, lambda n: r.randbytes(n)
    )
    return secp.xonly_from_secret(authority), static, cert


AUTH, STATIC, CERT = _pki()


@settings(max_examples=150, deadline=None)
@given(act1=st.binary(min_size=64, max_size=64))
def test_sv2_fuzz_act1_any_64_bytes(act1: bytes) -> None:
    # Every 64-byte string is a valid ElligatorSwift encoding: the responder must answer.
    reply, _ = NoiseResponder(STATIC, CERT).read_act1(act1)
    assert len(reply) == 234


@settings(max_examples=150, deadline=None)
@given(act2=st.binary(min_size=234, max_size=234))
def test_sv2_fuzz_act2_random(act2: bytes) -> None:
    initiator = NoiseInitiator(AUTH)
    initiator.write_act1()
    with pytest.raises(ProtocolError):
        initiator.read_act2(act2, 1_800_000_000)


@settings(max_examples=150, deadline=None)
@given(stream=st.binary(max_size=3000), piece=st.integers(1, 500))
def test_sv2_fuzz_encrypted_connection_after_handshake(stream: bytes, piece: int) -> None:
    client = Sv2Connection.initiator(AUTH, now=1_800_000_000)
    server = Sv2Connection.responder(STATIC, CERT)
    client.receive_data(server.receive_data(client.initiate()))
    try:
        for i in range(0, len(stream), piece):
            server.receive_data(stream[i : i + piece])
            while server.next_event() is not None:
                pass
    except ProtocolError:
        pass


def test_sv2_declared_huge_lengths_do_not_allocate() -> None:
    # Inside payloads: counts and lengths far beyond the bytes present fail fast.
    tricky = [
        (m.ProvideMissingTransactionsSuccess, b"\x01\x00\x00\x00" + b"\xff\xff" + b"\xff\xff\xff"),
        (m.DeclareMiningJob, b"\x00" * 4 + b"\x00" + b"\x00" * 4 + b"\x00\x00" * 2 + b"\xff\xff"),
        (m.RequestTransactionDataSuccess, b"\x00" * 8 + b"\x00\x00" + b"\xff\xff" + b"\xff" * 3),
        (m.SetGroupChannel, b"\x00" * 4 + b"\xff\xff"),
    ]
    tracemalloc.start()
    try:
        for cls, payload in tricky:
            with pytest.raises(ProtocolError):
                cls.decode_payload(payload)
        # Frame level: a 16 MiB declaration on the encrypted transport allocates nothing.
        initiator = NoiseInitiator(AUTH)
        act2, r_transport = NoiseResponder(STATIC, CERT).read_act1(initiator.write_act1())
        i_transport = initiator.read_act2(act2, 1_800_000_000)
        enc_header = i_transport.encrypt_frame(encode_header(0, 0x56, (1 << 24) - 1, False), b"")
        tracemalloc.reset_peak()
        r_transport.feed(enc_header + b"z" * 100)
        assert r_transport.next_frame() is None  # waiting for 16 MiB that never came
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024

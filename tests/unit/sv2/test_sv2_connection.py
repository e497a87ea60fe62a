"""Sans-IO connection: handshake over arbitrary chunking, events, errors, plain mode."""

from __future__ import annotations

import random

import pytest

from protocols.sv2 import secp
from protocols.sv2.connection import HandshakeComplete, Role, Sv2Connection, UnknownMessage
from protocols.sv2.errors import (
    CertificateError,
    ConnectionStateError,
    DecodeError,
    DecryptionError,
    FramingError,
    ProtocolError,
)
from protocols.sv2.framing import encode_frame
from protocols.sv2.messages import (
    NewTemplate,
    Protocol,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSharesStandard,
)
from protocols.sv2.noise import Certificate

NOW = 1_800_000_000


def rng_for(seed: int):
    r = random.Random(seed)
    return lambda n: r.randbytes(n)


def make_pair(now: int = NOW, max_payload: int | None = None):
    rng = rng_for(11)
    authority, static = rng(32), rng(32)
    cert = Certificate.issue(authority, secp.xonly_from_secret(static), now - 10, now + 60, rng)
    kwargs = {} if max_payload is None else {"max_payload": max_payload}
    client = Sv2Connection.initiator(
        secp.xonly_from_secret(authority), now=now, rng=rng_for(12), **kwargs
    )
    server = Sv2Connection.responder(static, cert, rng=rng_for(13), **kwargs)
    return client, server


def drain(conn: Sv2Connection) -> list:
    events = []
    while (ev := conn.next_event()) is not None:
        events.append(ev)
    return events


def connect(client: Sv2Connection, server: Sv2Connection, piece: int = 1 << 20) -> None:
    act1 = client.initiate()
    reply = b""
    for i in range(0, len(act1), piece):
        reply += server.receive_data(act1[i : i + piece])
    for i in range(0, len(reply), piece):
        assert client.receive_data(reply[i : i + piece]) == b""


SETUP = SetupConnection(
    Protocol.MINING, 2, 2, 0b110, "pool.example", 3333, "blvm", "sim", "0.1", "d1"
)


@pytest.mark.parametrize("piece", [1, 5, 63, 64, 65, 233, 1000])
def test_sv2_connection_handshake_any_chunking(piece: int) -> None:
    client, server = make_pair()
    assert not client.handshake_complete
    connect(client, server, piece)
    assert client.handshake_complete and server.handshake_complete
    (c_ev,) = drain(client)
    (s_ev,) = drain(server)
    assert isinstance(c_ev, HandshakeComplete) and c_ev.certificate is not None
    assert isinstance(s_ev, HandshakeComplete)
    wire = client.send(SETUP) + client.send(SubmitSharesStandard(1, 2, 3, 4, 5, 6))
    for i in range(0, len(wire), piece):
        server.receive_data(wire[i : i + piece])
    assert drain(server) == [SETUP, SubmitSharesStandard(1, 2, 3, 4, 5, 6)]
    server_wire = server.send(SetupConnectionSuccess(2, 0))
    client.receive_data(server_wire)
    assert drain(client) == [SetupConnectionSuccess(2, 0)]


def test_sv2_connection_first_frame_in_same_packet_as_act1() -> None:
    client, server = make_pair()
    act1 = client.initiate()
    # A server that answers act 1 and a client that pipelines would both be fine; here the
    # responder receives act 1 and immediately more ciphertext it cannot have yet.
    reply = server.receive_data(act1)
    client.receive_data(reply + server.send(SetupConnectionSuccess(2, 1)))
    assert drain(client)[1] == SetupConnectionSuccess(2, 1)


def test_sv2_connection_large_message() -> None:
    client, server = make_pair()
    connect(client, server)
    drain(client), drain(server)
    rnd = random.Random(3)
    tmpl = NewTemplate(
        1, False, 2, 2, b"\x03abc", 0, 1, 1, rnd.randbytes(65535), 0,
        tuple(rnd.randbytes(32) for _ in range(200)),
    )  # fmt: skip
    client.receive_data(server.send(tmpl))
    assert drain(client) == [tmpl]


def test_sv2_connection_unknown_message_is_an_event() -> None:
    client, server = make_pair()
    connect(client, server)
    drain(client), drain(server)
    server.receive_data(client.send_frame(0x4242, 0x07, b"opaque", channel_msg=True))
    (ev,) = drain(server)
    assert isinstance(ev, UnknownMessage)
    assert ev.header.extension == 0x4242 and ev.header.channel_msg and ev.payload == b"opaque"


def test_sv2_connection_malformed_payload_fails_connection() -> None:
    client, server = make_pair()
    connect(client, server)
    drain(client), drain(server)
    server.receive_data(client.send_frame(0, 0x1A, b"\x00" * 23, channel_msg=True))
    with pytest.raises(DecodeError):
        server.next_event()
    # The connection stays failed.
    with pytest.raises(DecodeError):
        server.next_event()
    with pytest.raises(DecodeError):
        server.receive_data(b"more")


def test_sv2_connection_tampered_ciphertext() -> None:
    client, server = make_pair()
    connect(client, server)
    drain(client), drain(server)
    wire = bytearray(client.send(SETUP))
    wire[-1] ^= 1
    server.receive_data(bytes(wire))
    with pytest.raises(DecryptionError):
        server.next_event()


def test_sv2_connection_expired_certificate() -> None:
    client, server = make_pair()
    act1 = client.initiate()
    reply = server.receive_data(act1)
    with pytest.raises(CertificateError):
        client.receive_data(reply, now=NOW + 3600)
    with pytest.raises(CertificateError):
        client.next_event()


def test_sv2_connection_oversized_frame_rejected() -> None:
    client, server = make_pair(max_payload=4096)
    connect(client, server)
    drain(client), drain(server)
    server.receive_data(client.send_frame(0, 0x71, bytes(5000)))
    with pytest.raises(FramingError):
        server.next_event()


def test_sv2_connection_misuse_is_not_a_protocol_error() -> None:
    client, server = make_pair()
    with pytest.raises(ConnectionStateError):
        client.send(SETUP)
    with pytest.raises(ConnectionStateError):
        server.initiate()
    with pytest.raises(ConnectionStateError):
        client.receive_data(b"x")  # before initiate()
    assert not issubclass(ConnectionStateError, ProtocolError)


def test_sv2_connection_plain_mode() -> None:
    a = Sv2Connection.plain(Role.INITIATOR)
    b = Sv2Connection.plain(Role.RESPONDER)
    assert isinstance(a.next_event(), HandshakeComplete)
    assert isinstance(b.next_event(), HandshakeComplete)
    wire = a.send(SETUP)
    assert wire == SETUP.to_frame()
    for byte in wire:
        b.receive_data(bytes([byte]))
    assert drain(b) == [SETUP]
    b.receive_data(encode_frame(0, 0x00, b"\x00"))
    with pytest.raises(DecodeError):
        b.next_event()


def _mixed_stream(client: Sv2Connection) -> tuple[bytes, list]:
    """Small, empty-payload, unknown and multi-chunk (> 65,519-byte) frames, in one stream."""
    rnd = random.Random(5)
    big = NewTemplate(
        2, True, 2, 2, b"\x03abc", 0, 1, 1, rnd.randbytes(65535), 0,
        tuple(rnd.randbytes(32) for _ in range(100)),
    )  # fmt: skip
    shares = [SubmitSharesStandard(1, n, 2, n, 5, 0x20000000) for n in range(20)]
    sent = [*shares[:10], big, *shares[10:]]
    wire = b"".join(client.send(m) for m in sent)
    wire += client.send_frame(0x4242, 0x07, b"", channel_msg=False)
    return wire, sent


@pytest.mark.parametrize("seed", range(6))
def test_sv2_connection_events_equals_next_event_over_any_split(seed: int) -> None:
    """`events()` (the hot path) yields what `next_event()` would, wherever reads split."""
    client, server = make_pair()
    connect(client, server)
    drain(client), drain(server)
    wire, sent = _mixed_stream(client)
    rnd = random.Random(seed)
    got: list = []
    pos = 0
    while pos < len(wire):
        step = rnd.choice((1, 7, 22, 57, 1000, 70_000))
        server.receive_data(wire[pos : pos + step])
        pos += step
        got.extend(server.events())
    assert got[:-1] == sent
    assert isinstance(got[-1], UnknownMessage) and got[-1].payload == b""
    assert list(server.events()) == [] and server.next_event() is None


def test_sv2_connection_events_stop_early_keeps_the_rest() -> None:
    client, server = make_pair()
    connect(client, server)
    drain(client), drain(server)
    wire, sent = _mixed_stream(client)
    server.receive_data(wire)
    first = []
    for event in server.events():
        first.append(event)
        if len(first) == 3:
            break
    assert first == sent[:3]
    assert drain(server)[: len(sent) - 3] == sent[3:]  # one at a time resumes in place


def test_sv2_connection_events_deliver_what_precedes_a_tampered_frame() -> None:
    client, server = make_pair()
    connect(client, server)
    drain(client), drain(server)
    good = [SubmitSharesStandard(1, n, 2, n, 5, 0x20000000) for n in range(3)]
    wire = b"".join(client.send(m) for m in good)
    bad = bytearray(client.send(good[0]))
    bad[-1] ^= 1
    server.receive_data(wire + bytes(bad))
    got = []
    with pytest.raises(DecryptionError):
        for event in server.events():
            got.append(event)
    assert got == good
    with pytest.raises(DecryptionError):  # the connection stays failed
        list(server.events())

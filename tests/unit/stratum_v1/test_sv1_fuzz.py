"""Fuzzing both decoders: whatever arrives, only this package's error types come out."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.stratum_v1 import (
    Authorize,
    ClientConnection,
    Configure,
    ExtranonceSubscribe,
    GetVersion,
    Notify,
    Ping,
    ProtocolError,
    ServerConnection,
    StratumV1Error,
    Submit,
    Subscribe,
    SuggestDifficulty,
)
from protocols.stratum_v1.codec import encode_event
from protocols.stratum_v1.framing import encode_line

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

METHODS = [
    "mining.subscribe",
    "mining.authorize",
    "mining.configure",
    "mining.suggest_difficulty",
    "mining.extranonce.subscribe",
    "mining.submit",
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_extranonce",
    "mining.set_version_mask",
    "client.reconnect",
    "client.show_message",
    "mining.ping",
    "client.get_version",
    "mining.unknown",
]

hexish = st.one_of(
    st.binary(max_size=40).map(bytes.hex),
    st.sampled_from(["", "zz", "0", "ffffffff", "1ffffffff", " 00", "0x12", "٣"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    hexish,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=10) | st.dictionaries(st.text(max_size=30), inner, max_size=5)
    ),
    max_leaves=25,
)
ids = st.one_of(
    st.none(),
    st.integers(min_value=-3, max_value=12),
    st.text(max_size=3),
    st.booleans(),
    st.floats(),
)


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(["request", "response", "junk"]))
    if kind == "request":
        obj = {"id": draw(ids), "method": draw(st.sampled_from(METHODS) | st.text(max_size=10))}
        obj["params"] = draw(st.lists(json_values, max_size=10) | json_values)
    elif kind == "response":
        obj = {"id": draw(ids), "result": draw(json_values), "error": draw(json_values)}
    else:
        obj = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
    for key in draw(st.lists(st.sampled_from(["id", "params", "result", "error"]), max_size=2)):
        obj.pop(key, None)
    return obj


def _client_with_pending() -> ClientConnection:
    """A client with one outstanding request of every kind, ids 2..8, so fuzzed responses
    exercise every typed response decoder."""
    client = ClientConnection()
    client.send(Subscribe())
    client.receive_data(b'{"id":1,"result":[[],"00",0],"error":null}\n')
    for req in (
        Authorize("w"),
        Configure.version_rolling(0xFFFFFFFF),
        SuggestDifficulty(1),
        ExtranonceSubscribe(),
        Submit("w", "1", b"", 0, 0),
    ):
        client.send(req)
    client.send(Subscribe(req_id=8))
    assert len(client.pending_requests) == 6
    return client


def _feed(conn, data: bytes) -> None:
    with contextlib.suppress(StratumV1Error):
        conn.receive_data(data)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_server(data):
    _feed(ServerConnection(max_line_bytes=256), data)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_client(data):
    _feed(ClientConnection(max_line_bytes=256), data + b"\n")


@FUZZ
@given(st.lists(messages(), min_size=1, max_size=5))
def test_random_json_shapes_server(objs):
    server = ServerConnection()
    server.send(Ping())
    server.send(GetVersion())
    for obj in objs:
        try:
            line = json.dumps(obj).encode() + b"\n"
        except (ValueError, TypeError):
            continue
        _feed(server, line)


@FUZZ
@given(st.lists(messages(), min_size=1, max_size=5))
def test_random_json_shapes_client(objs):
    client = _client_with_pending()
    for obj in objs:
        line = json.dumps(obj).encode() + b"\n"
        _feed(client, line)


u32 = st.integers(min_value=0, max_value=2**32 - 1)


@FUZZ
@given(
    st.text(max_size=30),
    st.text(max_size=12),
    st.binary(min_size=0, max_size=16),
    u32,
    u32,
    st.none() | u32,
)
def test_submit_round_trip_property(worker, job_id, en2, ntime, nonce, vbits):
    server = ServerConnection()
    sub = Submit(worker, job_id, en2, ntime, nonce, vbits, req_id=1)
    [got] = server.receive_data(encode_line(encode_event(sub)))
    assert got == Submit(worker, job_id, en2, ntime, nonce, vbits, got.req_id)


@FUZZ
@given(
    st.text(max_size=12),
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=100),
    st.binary(max_size=100),
    st.lists(st.binary(min_size=32, max_size=32), max_size=14),
    u32,
    u32,
    u32,
    st.booleans(),
)
def test_notify_round_trip_property(job_id, prev, c1, c2, branch, version, nbits, ntime, clean):
    job = Notify(job_id, prev, c1, c2, tuple(branch), version, nbits, ntime, clean)
    assert ClientConnection().receive_data(ServerConnection().send(job)) == [job]


def test_oversize_line_is_a_protocol_error_and_kills_only_that_connection():
    bad, good = ServerConnection(), ServerConnection()
    try:
        bad.receive_data(b"{" + b" " * 20000)
    except ProtocolError as exc:
        assert "limit" in str(exc)
    else:
        raise AssertionError("oversize line accepted")
    try:
        bad.receive_data(b"\n")
    except ProtocolError:
        pass
    else:
        raise AssertionError("dead connection kept parsing")
    assert good.receive_data(b'{"id":1,"method":"mining.subscribe","params":[]}\n')

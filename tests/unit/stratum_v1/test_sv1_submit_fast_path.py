"""`match_submit` (the submit decoded without JSON) never disagrees with the JSON path."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.stratum_v1 import ProtocolError, ServerConnection, Submit
from protocols.stratum_v1.codec import decode_client_request, match_submit, split_message
from protocols.stratum_v1.framing import parse_line

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def json_path(line: bytes) -> object:
    """What the general path makes of a line: an event, or the ProtocolError it raises."""
    try:
        obj = parse_line(line)
        method, rid = split_message(obj)
        assert method is not None
        return decode_client_request(obj, method, rid)
    except ProtocolError as exc:
        return exc


# Lines as miners' firmware writes them (layouts and spacing, not their code).
FIRMWARE_LINES = [
    # compact, id first (this project's client, many proxies)
    b'{"id":7,"method":"mining.submit","params":["bc1q.rig","1a","0000000000000001",'
    b'"6553f100","0badf00d"]}',
    # spaces after separators, version bits (Bitaxe-style)
    b'{"id": 12, "method": "mining.submit", "params": ["bc1q.bitaxe", "3", "00000001", '
    b'"6553f100", "deadbeef", "00a00000"]}',
    # params first (cgminer/bmminer-style)
    b'{"params": ["user.s9", "7f", "0a0b0c0d", "6553f100", "00000000"], "id": 99, '
    b'"method": "mining.submit"}',
]


@pytest.mark.parametrize("line", FIRMWARE_LINES)
def test_firmware_layouts_take_the_fast_path_and_agree(line: bytes) -> None:
    fast = match_submit(line)
    assert isinstance(fast, Submit)
    assert fast == json_path(line)


@pytest.mark.parametrize(
    "line",
    [
        b'{"id":1,"method":"mining.submit","params":["w\\u0041","1","00","6553f100","00"]}',
        b'{"id":"1","method":"mining.submit","params":["w","1","00","6553f100","00"]}',
        b'{"id":01,"method":"mining.submit","params":["w","1","00","6553f100","00"]}',
        b'{"id":1,"method":"mining.submit","params":["w","1","000","6553f100","00"]}',
        b'{"id":1,"method":"mining.submit","params":["w","1","00","16553f100","00"]}',
        b'{"id":1,"method":"mining.submit","params":["w","1","00","6553f100","00",null]}',
        b'{"id":1,"method":"mining.submit","params":["w",1,"00","6553f100","00"]}',
        b'{"id":1,"method":"mining.submit","params":["w","1","00","6553f100","00"],"x":1}',
        b'{"id":1,"method":"mining.submit","params":["w","1","' + b"00" * 33 + b'","1","2"]}',
        b'{"id":1,"method":"mining.subscribe","params":["w","1","00","6553f100","00"]}',
        b'{"id":1,"method":"mining.submit","params":["w","1","00","6553f100","00"]',
    ],
)
def test_anything_unusual_is_left_to_the_json_path(line: bytes) -> None:
    assert match_submit(line) is None


ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
json_ws = st.sampled_from(["", " ", "  ", "\t", "\r", " \t "])
hex_field = st.one_of(
    st.binary(max_size=34).map(bytes.hex),
    st.sampled_from(["", "0", "abc", "ABCDEF", "123456789", "zz"]),
)


@st.composite
def submit_lines(draw: st.DrawFn) -> bytes:
    """Submit-shaped JSON lines: varied spacing, key order, types and field sizes."""
    ws = draw(json_ws)
    params = [
        draw(ascii_text),
        draw(st.one_of(ascii_text, st.integers(0, 99))),
        draw(hex_field),
        draw(hex_field),
        draw(hex_field),
    ]
    if draw(st.booleans()):
        params.append(draw(st.one_of(hex_field, st.none())))
    rid = draw(st.one_of(st.integers(0, 10**20), st.integers(-5, -1), ascii_text))
    items = [("id", rid), ("method", "mining.submit"), ("params", params)]
    items = draw(st.permutations(items))
    sep = ws + "," + ws
    body = sep.join(
        f"{json.dumps(k)}{ws}:{ws}{json.dumps(v, separators=(sep, ':'))}" for k, v in items
    )
    return ("{" + ws + body + ws + "}").encode()


@FUZZ
@given(submit_lines())
def test_a_match_always_equals_the_json_path(line: bytes) -> None:
    fast = match_submit(line)
    if fast is not None:
        assert fast == json_path(line)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_never_match_differently(line: bytes) -> None:
    fast = match_submit(line)
    if fast is not None:
        assert fast == json_path(line)


def test_server_decodes_a_mixed_chunk_in_order() -> None:
    """Fast-path submits and JSON-path requests in one read keep their order."""
    conn = ServerConnection()
    chunk = (
        b'{"id":1,"method":"mining.subscribe","params":["ua"]}\n'
        b'{"id":2,"method":"mining.submit","params":["w","1","00","6553f100","2a"]}\n'
        b'{"id":3,"method":"mining.submit","params":["w\\u0041","1","00","6553f100","2a"]}\n'
    )
    events = conn.receive_data(chunk)
    assert [type(e).__name__ for e in events] == ["Subscribe", "Submit", "Submit"]
    assert [e.worker for e in events[1:]] == ["w", "wA"]
    assert conn.unanswered_peer_requests == 3
    assert conn.accept_share(2) == b'{"id":2,"result":true,"error":null}\n'
    assert conn.unanswered_peer_requests == 2

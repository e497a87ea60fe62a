"""Line framing: splitting, limits, and every kind of malformed line."""

from __future__ import annotations

import pytest

from protocols.stratum_v1 import ClientConnection, ProtocolError, ServerConnection
from protocols.stratum_v1.framing import MAX_LINE_BYTES, LineDecoder, encode_line


def test_split_partial_crlf_and_blank_lines():
    dec = LineDecoder()
    assert dec.feed(b'{"a":1}\r\n\n  \n{"b"') == [{"a": 1}]
    assert dec.buffered == 4
    assert dec.feed(b":2}\n") == [{"b": 2}]
    assert dec.buffered == 0


def test_encode_is_compact_ascii_line():
    assert encode_line({"id": 1, "s": "é"}) == b'{"id":1,"s":"\\u00e9"}\n'


def test_default_limit_is_16_kib():
    assert MAX_LINE_BYTES == 16384
    dec = LineDecoder()
    ok = b'{"x":"' + b"a" * (MAX_LINE_BYTES - 8) + b'"}'
    assert len(ok) == MAX_LINE_BYTES
    assert dec.feed(ok + b"\n") == [{"x": "a" * (MAX_LINE_BYTES - 8)}]
    with pytest.raises(ProtocolError, match="limit"):
        LineDecoder().feed(b'{"x":"' + b"a" * MAX_LINE_BYTES + b'"}\n')


def test_unterminated_oversize_line_fails_before_newline():
    dec = LineDecoder(max_line_bytes=100)
    dec.feed(b"{" + b" " * 99)
    with pytest.raises(ProtocolError, match="unterminated"):
        dec.feed(b" ")
    with pytest.raises(ProtocolError, match="already failed"):
        dec.feed(b"{}\n")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"not json", "invalid JSON"),
        (b"[1,2]", "JSON object"),
        (b'"str"', "JSON object"),
        (b'{"a":NaN}', "invalid JSON"),
        (b'{"a":Infinity}', "invalid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"a":1} {"b":2}', "invalid JSON"),
        (b"[" * 5000 + b"]" * 5000, "invalid JSON|JSON object"),
        (b'{"a":' + b"9" * 5000 + b"}", "invalid JSON"),
    ],
)
def test_malformed_lines(line, why):
    with pytest.raises(ProtocolError, match=why):
        LineDecoder(max_line_bytes=20000).feed(line + b"\n")


@pytest.mark.parametrize(
    "obj",
    [
        b'{"id":1}',  # neither method nor result
        b'{"id":true,"method":"mining.subscribe"}',
        b'{"id":1.5,"method":"mining.subscribe"}',
        b'{"id":1,"method":5}',
        b'{"id":1,"method":"mining.submit","params":{"a":1}}',
        b'{"id":1,"method":"mining.submit","params":["w","j","zz","00000000","00000000"]}',
        b'{"id":1,"method":"mining.submit","params":["w","j","00","123456789","00000000"]}',
        b'{"id":1,"method":"mining.submit","params":["w","j","00","00000000"]}',
        b'{"id":1,"method":"mining.submit","params":[1,"j","00","00000000","00000000"]}',
        b'{"id":1,"method":"mining.submit","params":["w","j","0 0","00000000","00000000"]}',
        b'{"id":1,"method":"mining.submit","params":["w","j","00","0x000000","00000000"]}',
        b'{"id":1,"method":"mining.authorize","params":[]}',
        b'{"id":1,"method":"mining.suggest_difficulty","params":[0]}',
        b'{"id":1,"method":"mining.suggest_difficulty","params":[true]}',
        b'{"id":1,"method":"mining.suggest_difficulty","params":["1"]}',
        b'{"id":1,"method":"mining.configure","params":["version-rolling"]}',
        b'{"id":1,"method":"mining.configure","params":[["version-rolling"],'
        b'{"version-rolling.mask":"xyz"}]}',
    ],
)
def test_server_rejects_bad_shapes(obj):
    with pytest.raises(ProtocolError):
        ServerConnection().receive_data(obj + b"\n")


GOOD_NOTIFY = [
    "j",
    "00" * 32,
    "01",
    "02",
    [],
    "20000000",
    "1d00ffff",
    "5f5e1000",
    True,
]


def _notify_with(i, value):
    import json

    params = list(GOOD_NOTIFY)
    params[i] = value
    return json.dumps({"id": None, "method": "mining.notify", "params": params}).encode()


@pytest.mark.parametrize(
    "line",
    [
        _notify_with(0, 7),
        _notify_with(1, "00" * 31),
        _notify_with(2, "0g"),
        _notify_with(4, ["00" * 31]),
        _notify_with(4, "not a list"),
        _notify_with(4, ["00" * 32] * 33),
        _notify_with(5, "200000000"),
        _notify_with(8, "yes"),
        b'{"id":null,"method":"mining.notify","params":["j"]}',
        b'{"id":null,"method":"mining.set_difficulty","params":[-1]}',
        b'{"id":null,"method":"mining.set_difficulty","params":[]}',
        b'{"id":null,"method":"mining.set_extranonce","params":["abc",4]}',
        b'{"id":null,"method":"mining.set_extranonce","params":["ab",99]}',
        b'{"id":null,"method":"client.reconnect","params":["h",70000]}',
        b'{"id":null,"method":"client.show_message","params":[5]}',
    ],
)
def test_client_rejects_bad_shapes(line):
    with pytest.raises(ProtocolError):
        ClientConnection().receive_data(line + b"\n")


def test_notify_clean_jobs_accepts_0_and_1():
    [job] = ClientConnection().receive_data(_notify_with(8, 1) + b"\n")
    assert job.clean_jobs is True


@pytest.mark.parametrize("req_id", [0, 1, 7, 4096, -3, 2**31, 2**70])
def test_sv1_accepted_fast_path_matches_json(req_id: int) -> None:
    from protocols.stratum_v1 import codec
    from protocols.stratum_v1 import events as ev
    from protocols.stratum_v1.framing import encode_accepted

    generic = encode_line(codec.encode_event(ev.SubmitResult(req_id, True)))
    assert encode_accepted(req_id) == generic


def test_sv1_server_answers_submits_like_json() -> None:
    """Accepted (fast path) and rejected/string-id (json) answers, as the peer parses them."""
    from protocols.stratum_v1 import events as ev
    from protocols.stratum_v1.errors import ErrorCode
    from protocols.stratum_v1.framing import parse_line

    server = ServerConnection()
    lines = (
        b'{"id":5,"method":"mining.submit","params":["w","1","00","00000000","00000000"]}\n'
        b'{"id":"x","method":"mining.submit","params":["w","1","00","00000000","00000001"]}\n'
        b'{"id":6,"method":"mining.submit","params":["w","1","00","00000000","00000002"]}\n'
    )
    submits = server.receive_data(lines)
    out = [
        server.send(ev.SubmitResult(submits[0].req_id, True)),
        server.send(ev.SubmitResult(submits[1].req_id, True)),
        server.send(ServerConnection.reject(submits[2].req_id, ErrorCode.DUPLICATE_SHARE)),
    ]
    assert [parse_line(line.strip()) for line in out] == [
        {"id": 5, "result": True, "error": None},
        {"id": "x", "result": True, "error": None},
        {"id": 6, "result": False, "error": [22, ErrorCode.DUPLICATE_SHARE.default_message, None]},
    ]


def test_sv1_accept_share_is_send_of_an_accepted_result() -> None:
    """`accept_share` answers like `send(SubmitResult(id, True))` and keeps the bookkeeping:
    an id answered once cannot be answered again."""
    from protocols.stratum_v1 import events as ev
    from protocols.stratum_v1.errors import LocalProtocolError

    line = b'{"id":%s,"method":"mining.submit","params":["w","1","00","00000000","00000000"]}\n'
    fast, slow = ServerConnection(), ServerConnection()
    for rid in (b"9", b'"s"'):
        [a] = fast.receive_data(line % rid)
        [b] = slow.receive_data(line % rid)
        assert fast.accept_share(a.req_id) == slow.send(ev.SubmitResult(b.req_id, True))
        with pytest.raises(LocalProtocolError):
            fast.accept_share(a.req_id)


def test_any_bytes_like_input() -> None:
    dec = LineDecoder()
    assert dec.feed(bytearray(b'{"a":1}\n{"b"')) == [{"a": 1}]
    assert dec.feed(memoryview(b":2}\n")) == [{"b": 2}]

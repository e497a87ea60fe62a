"""Client ↔ server round trips for every Stratum V1 message, wire forms and error codes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from protocols.stratum_v1 import (
    Ack,
    Authorize,
    AuthorizeResult,
    ClientConnection,
    Configure,
    ConfigureResult,
    ErrorCode,
    ErrorResponse,
    ExtranonceSubscribe,
    GetVersion,
    LocalProtocolError,
    Notify,
    Ping,
    Pong,
    ProtocolError,
    Reconnect,
    RpcError,
    ServerConnection,
    SetDifficulty,
    SetExtranonce,
    SetVersionMask,
    ShowMessage,
    Submit,
    SubmitResult,
    Subscribe,
    SubscribeResult,
    SuggestDifficulty,
    UnexpectedResponse,
    UnknownMethod,
    VersionResult,
)

EN1 = bytes.fromhex("08000002")


def _line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def _exchange(client: ClientConnection, server: ServerConnection, request):
    """Client sends ``request``; return the single event the server decoded."""
    [got] = server.receive_data(client.send(request))
    return got


def _answer(client: ClientConnection, server: ServerConnection, response):
    [got] = client.receive_data(server.send(response))
    return got


@pytest.fixture()
def pair() -> tuple[ClientConnection, ServerConnection]:
    return ClientConnection(user_agent="bitaxe/2.4"), ServerConnection()


def _handshake(client, server, worker="alice.1", en2_size=4, mask=None):
    sub = _exchange(client, server, Subscribe("bitaxe/2.4"))
    _answer(client, server, SubscribeResult(sub.req_id, EN1, en2_size))
    if mask is not None:
        conf = _exchange(client, server, Configure.version_rolling(0xFFFFFFFF, 2))
        _answer(client, server, server.configure_result(conf, mask))
    auth = _exchange(client, server, Authorize(worker, "x"))
    _answer(client, server, AuthorizeResult(auth.req_id, True))


def test_subscribe_round_trip(pair):
    client, server = pair
    got = _exchange(client, server, Subscribe("bitaxe/2.4", "deadbeef"))
    assert got == Subscribe("bitaxe/2.4", "deadbeef", req_id=1)
    assert server.user_agent == "bitaxe/2.4"
    res = _answer(client, server, SubscribeResult(got.req_id, EN1, 4))
    assert res == SubscribeResult(1, EN1, 4)
    assert res.request == got
    assert client.subscribed and server.subscribed
    assert client.extranonce1 == server.extranonce1 == EN1
    assert client.extranonce2_size == server.extranonce2_size == 4
    assert client.pending_requests == {} and server.unanswered_peer_requests == 0


def test_subscribe_without_params_and_ids_increase(pair):
    client, server = pair
    a = _exchange(client, server, Subscribe())
    b = _exchange(client, server, ExtranonceSubscribe())
    assert (a.req_id, b.req_id) == (1, 2)
    assert a == Subscribe(req_id=1)


def test_authorize_round_trip_and_refusal(pair):
    client, server = pair
    _handshake(client, server)
    assert client.authorized_workers == server.authorized_workers == {"alice.1"}
    req = _exchange(client, server, Authorize("mallory", "pw"))
    assert req == Authorize("mallory", "pw", req_id=req.req_id)
    res = _answer(client, server, ServerConnection.error(req.req_id, ErrorCode.UNAUTHORIZED_WORKER))
    assert res == AuthorizeResult(req.req_id, False, RpcError(24, "Unauthorized worker"))
    assert "mallory" not in client.authorized_workers | server.authorized_workers


@pytest.mark.parametrize(
    ("miner_mask", "pool_mask", "expect"),
    [
        (0xFFFFFFFF, 0x1FFFE000, 0x1FFFE000),
        (0x00FFF000, 0x1FFFE000, 0x00FFE000),
        (0x1FFFE000, 0x1FFFFFE0, 0x1FFFE000),  # BIP323-sized pool mask clamps to the miner's
        (0x00000001, 0x1FFFE000, 0),
    ],
)
def test_configure_version_rolling_negotiates_intersection(pair, miner_mask, pool_mask, expect):
    client, server = pair
    req = _exchange(client, server, Configure.version_rolling(miner_mask, 2))
    assert req.version_rolling_mask == miner_mask
    assert req.version_rolling_min_bit_count == 2
    res = _answer(client, server, server.configure_result(req, pool_mask))
    assert res == ConfigureResult(req.req_id, expect != 0, expect)
    want = expect if expect else None
    assert client.version_mask == server.version_mask == want


def test_configure_wire_form_matches_bip310(pair):
    client, server = pair
    wire = json.loads(client.send(Configure.version_rolling(0x1FFFE000, 16)))
    assert wire == {
        "id": 1,
        "method": "mining.configure",
        "params": [
            ["version-rolling"],
            {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 16},
        ],
    }
    [req] = server.receive_data(json.dumps(wire).encode() + b"\n")
    out = json.loads(server.send(server.configure_result(req, 0x1FFFE000)))
    assert out == {
        "id": 1,
        "result": {"version-rolling": True, "version-rolling.mask": "1fffe000"},
        "error": None,
    }


def test_configure_other_extensions_pass_through(pair):
    client, server = pair
    req = _exchange(
        client, server, Configure(("minimum-difficulty",), {"minimum-difficulty.value": 2048})
    )
    assert req.version_rolling_mask is None
    res = _answer(
        client,
        server,
        ConfigureResult(req.req_id, extra={"minimum-difficulty": True}),
    )
    assert res.extra == {"minimum-difficulty": True}
    assert res.version_rolling is None and client.version_mask is None
    assert server.configure_result(req, 0x1FFFE000) == ConfigureResult(req.req_id)


def test_suggest_difficulty_and_set_difficulty(pair):
    client, server = pair
    req = _exchange(client, server, SuggestDifficulty(1000))
    assert req == SuggestDifficulty(1000.0, req_id=1)
    assert server.suggested_difficulty == 1000
    assert _answer(client, server, Ack(req.req_id, True)) == Ack(1, True)
    assert _answer(client, server, SetDifficulty(1000)) == SetDifficulty(1000.0)
    assert client.difficulty == server.difficulty == 1000
    assert b'"params":[1000]' in server.send(SetDifficulty(1000.0))  # integral → integer
    assert _answer(client, server, SetDifficulty(0.0005)) == SetDifficulty(0.0005)


def test_notify_round_trip_and_prevhash_word_swap(pair):
    client, server = pair
    prevhash = bytes(range(32))
    job = Notify(
        "4f",
        prevhash,
        bytes.fromhex("01000000010000"),
        bytes.fromhex("ffffffff00000000"),
        (bytes(32), bytes([7]) * 32),
        0x20000000,
        0x1703A30C,
        0x66F1B2A9,
        True,
    )
    data = server.send(job)
    wire = json.loads(data)
    assert wire["id"] is None and wire["method"] == "mining.notify"
    assert wire["params"][1] == "03020100070605040b0a09080f0e0d0c13121110171615141b1a19181f1e1d1c"
    assert wire["params"][5:] == ["20000000", "1703a30c", "66f1b2a9", True]
    assert client.receive_data(data) == [job]


def test_notify_from_slush_documentation():
    """The example mining.notify in the original stratum docs decodes field by field."""
    line = (
        b'{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", '
        b'"01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", '
        b'"072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", '
        b'[], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}\n'
    )
    [job] = ClientConnection().receive_data(line)
    assert job.job_id == "bf"
    assert job.prevhash.hex() == (
        "f8b6164d19e2f65a2aae448f787fe66d61e57a48c0c6771b1e920b4400000000"
    )
    assert (job.version, job.nbits, job.ntime, job.clean_jobs) == (2, 0x1C2AC4AF, 0x504E86B9, False)
    assert job.merkle_branch == ()
    assert job.coinb2.endswith(bytes(4))


def test_submit_round_trip_with_and_without_version_bits(pair):
    client, server = pair
    _handshake(client, server, mask=0x1FFFE000)
    plain = Submit("alice.1", "bf", bytes.fromhex("00000001"), 0x504E86ED, 0xB2957C02)
    got = _exchange(client, server, plain)
    assert got == Submit(
        "alice.1", "bf", bytes.fromhex("00000001"), 0x504E86ED, 0xB2957C02, None, got.req_id
    )
    assert server.check_submit(got) is None
    assert _answer(client, server, SubmitResult(got.req_id, True)) == SubmitResult(got.req_id, True)

    rolled = Submit("alice.1", "bf", bytes.fromhex("00000002"), 0x504E86ED, 0x1, 0x00006000)
    wire = client.send(rolled)
    assert json.loads(wire)["params"] == [
        "alice.1",
        "bf",
        "00000002",
        "504e86ed",
        "00000001",
        "00006000",
    ]
    [got] = server.receive_data(wire)
    assert got.version_bits == 0x6000
    res = _answer(
        client, server, ServerConnection.reject(got.req_id, ErrorCode.LOW_DIFFICULTY_SHARE)
    )
    assert res.accepted is False
    assert res.error == RpcError(23, "Low difficulty share")
    assert res.request.nonce == 1


def test_submit_from_slush_documentation():
    server = ServerConnection()
    line = b'{"params": ["slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"], "id": 4, "method": "mining.submit"}\n'
    [sub] = server.receive_data(line)
    assert sub == Submit("slush.miner1", "bf", b"\x00\x00\x00\x01", 0x504E86ED, 0xB2957C02, None, 4)
    assert server.check_submit(sub) == ErrorCode.NOT_SUBSCRIBED
    out = server.send(server.reject(4, ErrorCode.NOT_SUBSCRIBED))
    assert json.loads(out) == {"id": 4, "result": False, "error": [25, "Not subscribed", None]}


def test_submit_error_codes_on_the_wire(pair):
    client, server = pair
    _handshake(client, server)
    for code, message in [
        (ErrorCode.OTHER, "Other/Unknown"),
        (ErrorCode.JOB_NOT_FOUND, "Job not found"),
        (ErrorCode.DUPLICATE_SHARE, "Duplicate share"),
        (ErrorCode.LOW_DIFFICULTY_SHARE, "Low difficulty share"),
        (ErrorCode.UNAUTHORIZED_WORKER, "Unauthorized worker"),
        (ErrorCode.NOT_SUBSCRIBED, "Not subscribed"),
    ]:
        req = _exchange(client, server, Submit("alice.1", "1", bytes(4), 0, 0))
        wire = server.send(server.reject(req.req_id, code))
        assert json.loads(wire)["error"] == [int(code), message, None]
        [res] = client.receive_data(wire)
        assert res.error.code == code and not res.accepted


def test_server_connection_level_checks(pair):
    client, server = pair
    sub = Submit("alice.1", "1", bytes(4), 0, 0, req_id=9)
    assert server.check_submit(sub) == ErrorCode.NOT_SUBSCRIBED
    _handshake(client, server)
    assert server.check_submit(sub) is None
    assert server.check_submit(Submit("bob", "1", bytes(4), 0, 0)) == ErrorCode.UNAUTHORIZED_WORKER
    assert server.check_submit(Submit("alice.1", "1", bytes(3), 0, 0)) == ErrorCode.OTHER
    # version bits without a negotiated mask
    assert server.check_submit(Submit("alice.1", "1", bytes(4), 0, 0, 0x2000)) == ErrorCode.OTHER


def test_json_rpc2_style_error_object_is_accepted(pair):
    client, _ = pair
    client.send(Subscribe())
    [res] = client.receive_data(
        _line({"id": 1, "result": None, "error": {"code": 20, "message": "busy"}})
    )
    assert res == ErrorResponse(1, RpcError(20, "busy"))


def test_set_extranonce_and_extranonce_subscribe(pair):
    client, server = pair
    _handshake(client, server)
    req = _exchange(client, server, ExtranonceSubscribe())
    assert _answer(client, server, Ack(req.req_id, True)).result is True
    assert server.extranonce_subscribed
    msg = SetExtranonce(bytes.fromhex("aabbccdd01"), 3)
    assert _answer(client, server, msg) == msg
    assert client.extranonce1 == server.extranonce1 == bytes.fromhex("aabbccdd01")
    assert client.extranonce2_size == server.extranonce2_size == 3
    with pytest.raises(LocalProtocolError):
        client.send(Submit("alice.1", "1", bytes(4), 0, 0))  # old extranonce2 size


@pytest.mark.parametrize(
    "msg",
    [
        Reconnect("pool.example.com", 3333, 10),
        Reconnect("pool.example.com", 3333),
        Reconnect(),
        ShowMessage("maintenance at 12:00 UTC"),
        SetVersionMask(0x1FFFE000),
        SetDifficulty(65536),
    ],
)
def test_notifications_round_trip(pair, msg):
    client, server = pair
    assert _answer(client, server, msg) == msg


def test_reconnect_with_string_port():
    client = ClientConnection()
    [ev] = client.receive_data(
        _line({"id": None, "method": "client.reconnect", "params": ["h", "3334", "5"]})
    )
    assert ev == Reconnect("h", 3334, 5)


def test_set_version_mask_updates_client(pair):
    client, server = pair
    _answer(client, server, SetVersionMask(0x00FFE000))
    assert client.version_mask == server.version_mask == 0x00FFE000


def test_ping_and_get_version_from_server(pair):
    client, server = pair
    [ping] = client.receive_data(server.send(Ping()))
    assert ping == Ping(req_id=1)
    [pong] = server.receive_data(client.send(Pong(ping.req_id)))
    assert pong == Pong(1) and isinstance(pong.request, Ping)
    [getv] = client.receive_data(server.send(GetVersion()))
    [ver] = server.receive_data(client.send(VersionResult(getv.req_id, client.user_agent)))
    assert ver == VersionResult(getv.req_id, "bitaxe/2.4")
    assert server.pending_requests == {}


def test_unknown_method_reaches_the_app(pair):
    client, server = pair
    [ev] = server.receive_data(
        _line({"id": 7, "method": "mining.get_transactions", "params": ["1"]})
    )
    assert ev == UnknownMethod("mining.get_transactions", ["1"], 7)
    out = json.loads(server.send(server.error(7, ErrorCode.OTHER, "Unknown method")))
    assert out == {"id": 7, "result": None, "error": [20, "Unknown method", None]}
    [note] = client.receive_data(_line({"id": None, "method": "mining.set_goal", "params": ["x"]}))
    assert note == UnknownMethod("mining.set_goal", ["x"], None)


def test_unexpected_response_is_reported_not_fatal(pair):
    client, _ = pair
    [ev] = client.receive_data(_line({"id": 99, "result": True, "error": None}))
    assert ev == UnexpectedResponse(99, True, None)


def test_local_protocol_errors(pair):
    client, server = pair
    with pytest.raises(LocalProtocolError):
        client.send(SetDifficulty(1))
    with pytest.raises(LocalProtocolError):
        client.send(Submit("w", "1", bytes(4), 0, 0))  # not subscribed
    with pytest.raises(LocalProtocolError):
        server.send(SubmitResult(5, True))  # nothing to answer
    with pytest.raises(LocalProtocolError):
        server.send(Subscribe())
    req = _exchange(client, server, Subscribe())
    with pytest.raises(LocalProtocolError):
        server.send(SubmitResult(req.req_id, True))  # wrong answer type
    _answer(client, server, SubscribeResult(req.req_id, EN1, 4))
    with pytest.raises(LocalProtocolError):
        client.send(Submit("w", "1", bytes(4), 0, 0, version_bits=0x2000))  # no mask negotiated
    with pytest.raises(LocalProtocolError):
        server.send(object())


def test_bytes_arrive_in_fragments(pair):
    client, server = pair
    data = client.send(Subscribe("a")) + client.send(Authorize("w", "p"))
    got = []
    for i in range(len(data)):
        got += server.receive_data(data[i : i + 1])
    assert [type(e) for e in got] == [Subscribe, Authorize]


def test_peer_flooding_unanswered_requests_is_cut_off():
    server = ServerConnection()
    data = b"".join(
        _line({"id": i, "method": "mining.extranonce.subscribe", "params": []}) for i in range(5000)
    )
    with pytest.raises(ProtocolError):
        server.receive_data(data)


def test_subscribe_result_shapes_seen_in_the_wild():
    client = ClientConnection()
    client.send(Subscribe())
    client.send(Subscribe())
    # single pair instead of a list of pairs
    [a] = client.receive_data(
        _line({"id": 1, "result": [["mining.notify", "ae68"], "f000", 8], "error": None})
    )
    assert a.subscriptions == (("mining.notify", "ae68"),) and a.extranonce2_size == 8
    [b] = client.receive_data(_line({"id": 2, "result": [None, "", 4], "error": None}))
    assert b.extranonce1 == b"" and b.subscriptions == ()


def test_miner_reusing_one_id_gets_every_answer_in_order():
    server = ServerConnection()
    line = _line(
        {"id": 0, "method": "mining.submit", "params": ["w", "j", "00", "00000000", "00000001"]}
    )
    subs = server.receive_data(line + line.replace(b'00000001"]', b'00000002"]'))
    assert [s.nonce for s in subs] == [1, 2]
    assert server.unanswered_peer_requests == 2
    server.send(ServerConnection.reject(0, ErrorCode.NOT_SUBSCRIBED))
    server.send(ServerConnection.reject(0, ErrorCode.NOT_SUBSCRIBED))
    assert server.unanswered_peer_requests == 0
    with pytest.raises(LocalProtocolError):
        server.send(ServerConnection.reject(0, ErrorCode.NOT_SUBSCRIBED))


@pytest.mark.parametrize(("raw", "count"), [(16, 16), ("16", 0x16), ("00000002", 2), (99, 32)])
def test_min_bit_count_as_integer_or_hex_text(raw, count):
    """BIP310 sends an integer; SRI's sv1_api (and some firmwares) send hex text."""
    server = ServerConnection()
    line = _line(
        {
            "id": 1,
            "method": "mining.configure",
            "params": [
                ["version-rolling"],
                {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": raw},
            ],
        }
    )
    [req] = server.receive_data(line)
    assert req.version_rolling_min_bit_count == count
    assert req.version_rolling_mask == 0x1FFFE000


def test_configure_result_with_sri_style_min_bit_count_text():
    client = ClientConnection()
    client.send(Configure.version_rolling(0x1FFFE000, 2))
    reply = {
        "id": 1,
        "error": None,
        "result": {
            "version-rolling": True,
            "version-rolling.mask": "1fffe000",
            "version-rolling.min-bit-count": "00000002",
        },
    }
    [res] = client.receive_data(_line(reply))
    assert res.version_rolling_mask == 0x1FFFE000 and client.version_mask == 0x1FFFE000
    assert res.extra == {"version-rolling.min-bit-count": "00000002"}


@pytest.mark.parametrize(
    ("params", "expect"),
    [
        (["bosminer-plus-tuner", None, "pool.example.com", None], Subscribe("bosminer-plus-tuner")),
        (["bosminer-plus-tuner", None], Subscribe("bosminer-plus-tuner")),
        (["cgminer/4.11.1", "08000002"], Subscribe("cgminer/4.11.1", "08000002")),
        ([], Subscribe()),
    ],
)
def test_subscribe_param_shapes_from_real_firmwares(params, expect):
    [got] = ServerConnection().receive_data(
        _line({"id": 1, "method": "mining.subscribe", "params": params})
    )
    assert got == replace(expect, req_id=1)

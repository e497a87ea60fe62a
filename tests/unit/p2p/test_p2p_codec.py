"""P2P framing, messages and handshake rules, including fuzzed input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.networks import MAINNET, REGTEST
from protocols.bitcoin.p2p.errors import (
    BadChecksum,
    BadMagic,
    MalformedMessage,
    OversizedMessage,
    P2PError,
    ProtocolViolation,
)
from protocols.bitcoin.p2p.framing import FrameDecoder, encode_frame
from protocols.bitcoin.p2p.messages import (
    MESSAGES,
    Addr,
    AddrV2,
    AddrV2Entry,
    BlockMessage,
    FeeFilter,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvItem,
    InvType,
    NetAddr,
    Ping,
    Pong,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    TimedAddr,
    TxMessage,
    UnknownMessage,
    Verack,
    Version,
    WtxidRelay,
    decode_message,
)
from protocols.bitcoin.p2p.peer import HandshakeState, PeerProtocol

GENESIS_HEADER = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b2"
    "7ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)


def test_verack_frame_matches_known_bytes() -> None:
    # mainnet verack: magic, "verack" padded, zero length, checksum of the empty payload
    expected = bytes.fromhex("f9beb4d976657261636b000000000000000000005df6e0e2")
    assert encode_frame(MAINNET.magic, b"verack", b"") == expected


def _samples(core_vectors) -> list:
    lines = (core_vectors / "regtest_blocks_1_206.txt").read_text().split()
    block = Block.from_hex(lines[-1])
    header = BlockHeader.parse(GENESIS_HEADER)
    return [
        Version(
            nonce=0x1122334455667788,
            start_height=812,
            timestamp=1_700_000_000,
            addr_recv=NetAddr.ipv4("127.0.0.1", 18444, 9),
            services=1033,
            relay=False,
        ),
        Verack(),
        SendHeaders(),
        WtxidRelay(),
        SendAddrV2(),
        Ping(7),
        Pong(2**64 - 1),
        FeeFilter(1000),
        SendCmpct(True, 2),
        Inv((InvItem(InvType.WITNESS_TX, b"\x01" * 32), InvItem(InvType.BLOCK, b"\x02" * 32))),
        GetData((InvItem(InvType.WITNESS_BLOCK, block.hash),)),
        GetHeaders(70016, (block.hash, header.hash), b"\x00" * 32),
        Headers((header, block.header)),
        TxMessage(block.txs[1] if len(block.txs) > 1 else block.txs[0]),
        BlockMessage(block),
        Addr((TimedAddr(1_700_000_000, NetAddr.ipv4("10.1.2.3", 8333, 1)),)),
        AddrV2((AddrV2Entry(1_700_000_000, 1033, 1, b"\x7f\x00\x00\x01", 8333),)),
    ]


def test_every_message_round_trips(core_vectors) -> None:
    samples = _samples(core_vectors)
    covered = {type(m) for m in samples}
    assert covered >= {
        cls
        for cls in MESSAGES.values()
        if cls.__name__ not in {"GetAddr", "MempoolRequest", "NotFound", "GetBlocks"}
    }
    for msg in samples:
        again = decode_message(msg.command, msg.serialize())
        assert again.serialize() == msg.serialize(), msg.command


def test_stream_split_anywhere_gives_same_messages(core_vectors) -> None:
    samples = [Version(nonce=1), Verack(), *_samples(core_vectors)[5:]]
    stream = b"".join(encode_frame(REGTEST.magic, m.command, m.serialize()) for m in samples)
    for step in (1, 7, 24, 4096):
        peer = PeerProtocol(REGTEST.magic)
        got = []
        for i in range(0, len(stream), step):
            got += peer.receive_data(stream[i : i + step])
        assert [m.serialize() for m in got] == [m.serialize() for m in samples]


def test_bad_checksum_magic_and_size_are_rejected() -> None:
    frame = bytearray(encode_frame(REGTEST.magic, b"ping", Ping(1).serialize()))
    frame[-1] ^= 1
    with pytest.raises(BadChecksum):
        PeerProtocol(REGTEST.magic).receive_data(bytes(frame))
    with pytest.raises(BadMagic):
        PeerProtocol(REGTEST.magic).receive_data(encode_frame(MAINNET.magic, b"ping", b"\x00" * 8))
    huge = (
        REGTEST.magic
        + b"block".ljust(12, b"\x00")
        + (5_000_000).to_bytes(4, "little")
        + b"\x00" * 4
    )
    decoder = FrameDecoder(REGTEST.magic)
    decoder.feed(huge)
    with pytest.raises(OversizedMessage):
        decoder.next_frame()


def test_count_limits_are_checked_before_allocation() -> None:
    # inv claiming 50,001 entries with no data behind them
    payload = b"\xfd" + (50_001).to_bytes(2, "little")
    with pytest.raises(MalformedMessage, match="above 50000"):
        Inv.parse(payload)
    with pytest.raises(MalformedMessage, match="above 2000"):
        Headers.parse(b"\xfd" + (2001).to_bytes(2, "little"))


def test_handshake_rules() -> None:
    peer = PeerProtocol(REGTEST.magic)
    send = PeerProtocol(REGTEST.magic).send
    assert peer.receive_data(send(Ping(1))) == []  # before version: dropped, like Core
    assert peer.ignored == 1
    peer.receive_data(send(Version(nonce=3)) + send(WtxidRelay()) + send(SendAddrV2()))
    assert peer.state is HandshakeState.AWAIT_VERACK
    assert peer.features.wtxid_relay and peer.features.addrv2
    assert peer.receive_data(send(Ping(2))) == []  # before verack: dropped
    out = peer.receive_data(send(Verack()) + send(Ping(3)))
    assert [type(m) for m in out] == [Verack, Ping] and peer.established
    with pytest.raises(ProtocolViolation):
        peer.receive_data(send(WtxidRelay()))
    with pytest.raises(ProtocolViolation):
        PeerProtocol(REGTEST.magic).receive_data(send(Version(version=209)))


def test_unknown_commands_pass_through_unparsed() -> None:
    msg = decode_message(b"sendtxrcncl", b"\x01\x02")
    assert isinstance(msg, UnknownMessage) and msg.payload == b"\x01\x02"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_only_raise_p2p_errors(data: bytes) -> None:
    peer = PeerProtocol(REGTEST.magic)
    with contextlib.suppress(P2PError):
        peer.receive_data(REGTEST.magic + data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(MESSAGES)), st.binary(max_size=600))
def test_fuzz_payloads_for_every_command(command: bytes, payload: bytes) -> None:
    with contextlib.suppress(P2PError):
        decode_message(command, payload)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_valid_frames(data: st.DataObject) -> None:
    msg = Version(nonce=9, user_agent=b"/x/")
    frame = bytearray(encode_frame(REGTEST.magic, msg.command, msg.serialize()))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(frame) - 1))
        frame[pos] = data.draw(st.integers(0, 255))
    with contextlib.suppress(P2PError):
        PeerProtocol(REGTEST.magic).receive_data(bytes(frame))

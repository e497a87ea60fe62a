"""Extension TLV fields: layout (SRI extensions_sv2), strictness before negotiation, connection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sv2 import messages as m
from protocols.sv2.connection import Role, Sv2Connection
from protocols.sv2.errors import DecodeError, EncodeError
from protocols.sv2.tlv import Tlv, decode_tlvs, encode_tlvs

SHARE = m.SubmitSharesExtended(1, 2, 3, 4, 5, 6, b"\xaa\xbb")


def test_sv2_tlv_layout() -> None:
    # Same bytes as SRI's own TLV unit test: 0x0002/0x01, "Worker_001".
    assert Tlv(2, 1, b"Worker_001").encode() == bytes.fromhex("0200010a00") + b"Worker_001"
    assert Tlv(1, 0, b"").encode() == bytes.fromhex("0100000000")


def test_sv2_share_with_user_identity_tlv() -> None:
    tagged = SHARE.with_tlvs(m.user_identity_tlv("rig-7"))
    payload = tagged.encode_payload()
    assert payload == SHARE.encode_payload() + bytes.fromhex("0200010500") + b"rig-7"
    with pytest.raises(DecodeError, match="trailing"):
        m.SubmitSharesExtended.decode_payload(payload)  # not negotiated: strict
    decoded = m.SubmitSharesExtended.decode_payload(payload, tlvs=True)
    assert decoded == SHARE and m.user_identity_from_tlvs(decoded.tlvs) == "rig-7"
    assert m.user_identity_from_tlvs(SHARE.tlvs) is None
    with pytest.raises(EncodeError):
        m.user_identity_tlv("x" * 33)


def test_sv2_tlv_on_single_struct_message() -> None:
    std = m.SubmitSharesStandard(1, 2, 3, 4, 5, 6).with_tlvs(Tlv(9, 9, b"z"))
    decoded = m.SubmitSharesStandard.decode_payload(std.encode_payload(), tlvs=True)
    assert decoded.tlvs == (Tlv(9, 9, b"z"),)
    with pytest.raises(DecodeError):
        m.SubmitSharesStandard.decode_payload(std.encode_payload()[:20], tlvs=True)


@pytest.mark.parametrize("tail", [b"\x02", b"\x02\x00\x01\x05\x00abc", b"\x02\x00\x01\x00"])
def test_sv2_malformed_tlv_rejected(tail: bytes) -> None:
    with pytest.raises(DecodeError):
        m.SubmitSharesExtended.decode_payload(SHARE.encode_payload() + tail, tlvs=True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(Tlv, st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.binary(max_size=40)),
        max_size=5,
    )
)
def test_sv2_tlv_roundtrip(tlvs: list[Tlv]) -> None:
    assert decode_tlvs(encode_tlvs(tlvs)) == tuple(tlvs)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_sv2_tlv_fuzz(data: bytes) -> None:
    try:
        parsed = decode_tlvs(data)
    except DecodeError:
        return
    assert encode_tlvs(parsed) == data


def test_sv2_connection_parses_tlvs_after_negotiation() -> None:
    client = Sv2Connection.plain(Role.INITIATOR)
    server = Sv2Connection.plain(Role.RESPONDER)
    server.next_event()
    tagged = SHARE.with_tlvs(m.user_identity_tlv("rig-1"))
    server.receive_data(client.send(tagged))
    with pytest.raises(DecodeError):
        server.next_event()
    server = Sv2Connection.plain(Role.RESPONDER)
    server.next_event()
    server.negotiated_extensions.add(m.WORKER_HASHRATE_TRACKING)
    server.receive_data(client.send(tagged))
    event = server.next_event()
    assert event == SHARE and m.user_identity_from_tlvs(event.tlvs) == "rig-1"

"""Upstream entries as users write them: URLs, authority keys, payout addresses."""

from __future__ import annotations

import pytest

from appliance.stratum_v2.source import PushedWorkSource
from appliance.stratum_v2.upstream.errors import UpstreamConfigError
from appliance.stratum_v2.upstream.factory import build_upstream, parse_upstream
from appliance.stratum_v2.upstream.solo import SoloUpstream
from appliance.stratum_v2.upstream.sv1_pool import Sv1PoolUpstream
from appliance.stratum_v2.upstream.sv2_pool import Sv2PoolUpstream
from protocols.bitcoin.address import encode_segwit_address
from protocols.sv2.keys import decode_authority_public_key

SRI_PUBLIC = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"


def test_sv2_url_with_authority_key() -> None:
    spec = parse_upstream(f"stratum2+tcp://pool.example:3336/{SRI_PUBLIC}", user="me.rig1")
    assert (spec.kind, spec.host, spec.port, spec.user) == ("sv2", "pool.example", 3336, "me.rig1")
    up = build_upstream(spec, 8)
    assert isinstance(up, Sv2PoolUpstream)
    assert up.authority_key == decode_authority_public_key(SRI_PUBLIC)


def test_sv2_url_without_key_is_refused_unless_allowed() -> None:
    with pytest.raises(UpstreamConfigError, match="authority key"):
        parse_upstream("stratum2+tcp://pool.example:3336")
    spec = parse_upstream("stratum2+tcp://pool.example:3336", allow_unverified=True)
    assert spec.authority_key is None


def test_bad_key_port_scheme_are_explained() -> None:
    with pytest.raises(UpstreamConfigError, match="bad authority key"):
        parse_upstream("stratum2+tcp://p:1/" + SRI_PUBLIC[:-1] + "x")
    with pytest.raises(UpstreamConfigError, match="host and port"):
        parse_upstream("stratum+tcp://pool.example", user="u")
    with pytest.raises(UpstreamConfigError, match="use stratum2"):
        parse_upstream("http://pool.example:80")
    with pytest.raises(UpstreamConfigError, match="needs a user"):
        parse_upstream("stratum+tcp://pool.example:3333")


def test_sv1_url() -> None:
    spec = parse_upstream("stratum+tcp://ckpool.example:3333", user="bc1q.worker", password="p")
    up = build_upstream(spec, 8)
    assert isinstance(up, Sv1PoolUpstream) and up.config.password == "p"


def test_solo_takes_an_address_of_the_right_network() -> None:
    address = encode_segwit_address("bcrt", 0, b"\x11" * 20)
    spec = parse_upstream(f"solo:{address}", network="regtest")
    assert spec.payout_script == b"\x00\x14" + b"\x11" * 20
    with pytest.raises(UpstreamConfigError, match="not a valid mainnet address"):
        parse_upstream(f"solo:{address}", network="mainnet")
    made: list[bytes] = []

    def source(script: bytes) -> PushedWorkSource:
        made.append(script)
        return PushedWorkSource(extranonce_size=8)

    up = build_upstream(spec, 8, solo_source=source)
    assert isinstance(up, SoloUpstream) and made == [spec.payout_script]
    with pytest.raises(UpstreamConfigError, match="template source"):
        build_upstream(spec, 8)

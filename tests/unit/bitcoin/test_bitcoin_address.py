"""Addresses and networks against Bitcoin Core's key_io and base58 vectors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.bitcoin import address as A
from protocols.bitcoin.address import AddressError
from protocols.bitcoin.networks import (
    MAINNET,
    NETWORKS,
    REGTEST,
    UnknownNetworkError,
    get_network,
    network_from_magic,
)
from protocols.bitcoin.script import p2pk_script, p2tr_script, p2wpkh_script


@pytest.fixture(scope="module")
def key_io_valid(core_vectors):
    return json.loads((core_vectors / "key_io_valid.json").read_text())


@pytest.fixture(scope="module")
def key_io_invalid(core_vectors):
    return json.loads((core_vectors / "key_io_invalid.json").read_text())


def test_key_io_valid_addresses(key_io_valid):
    checked = 0
    for text, payload, meta in key_io_valid:
        net = get_network(meta["chain"])
        if meta["isPrivkey"]:
            continue
        script = bytes.fromhex(payload)
        assert A.address_to_script(text, net) == script, text
        # Core writes lower case bech32; base58 is case-sensitive and written as given.
        expected = text.lower() if meta.get("tryCaseFlip") is not None else text
        assert A.script_to_address(script, net) == expected
        if meta.get("tryCaseFlip"):
            assert A.address_to_script(text.swapcase(), net) == script
        checked += 1
    assert checked >= 40


def test_key_io_valid_private_keys(key_io_valid):
    checked = 0
    for text, payload, meta in key_io_valid:
        if not meta["isPrivkey"]:
            continue
        net = get_network(meta["chain"])
        secret, compressed = A.decode_wif(text, net)
        assert secret.hex() == payload and compressed == meta["isCompressed"]
        assert A.encode_wif(secret, net, compressed) == text
        # A private key is never an address, on any network.
        for other in NETWORKS.values():
            assert not A.is_valid_address(text, other)
        checked += 1
    assert checked >= 10


def test_key_io_invalid_rejected_on_every_network(key_io_invalid):
    for text, *_rest in key_io_invalid:
        for net in NETWORKS.values():
            with pytest.raises(AddressError):
                A.address_to_script(text, net)
            with pytest.raises(AddressError):
                A.decode_wif(text, net)


def test_base58_vectors(core_vectors):
    rows = json.loads((core_vectors / "base58_encode_decode.json").read_text())
    for hexdata, encoded in rows:
        assert A.b58encode(bytes.fromhex(hexdata)) == encoded
        assert A.b58decode(encoded) == bytes.fromhex(hexdata)
    with pytest.raises(AddressError, match="invalid base58 character '0'"):
        A.b58decode("3mJr0")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_base58check_round_trip(data):
    assert A.b58check_decode(A.b58check_encode(data)) == data


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 16), st.binary(min_size=2, max_size=40))
def test_segwit_round_trip(version, program):
    if version == 0 and len(program) not in (20, 32):
        with pytest.raises(AddressError):
            A.encode_segwit_address("bc", version, program)
        return
    addr = A.encode_segwit_address("bc", version, program)
    assert A.decode_segwit_address("bc", addr) == (version, program)


def test_bip173_bip350_rules():
    p2wpkh = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert A.decode_segwit_address("bc", p2wpkh)[0] == 0
    assert A.decode_segwit_address("bc", p2wpkh.upper())[0] == 0
    with pytest.raises(AddressError, match="mixes upper and lower"):
        A.bech32_decode("bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
    with pytest.raises(AddressError, match="checksum"):
        A.bech32_decode(p2wpkh[:-1] + "5")
    # The same program encoded with bech32m must be refused for version 0.
    bad = A.bech32_encode("bc", [0, *A.convert_bits(bytes(20), 8, 5, True)], A.Encoding.BECH32M)
    with pytest.raises(AddressError, match="must use bech32"):
        A.decode_segwit_address("bc", bad)
    v1_bech32 = A.bech32_encode(
        "bc", [1, *A.convert_bits(bytes(32), 8, 5, True)], A.Encoding.BECH32
    )
    with pytest.raises(AddressError, match="must use bech32m"):
        A.decode_segwit_address("bc", v1_bech32)
    with pytest.raises(AddressError, match="longer than 90"):
        A.bech32_decode("bc1" + "q" * 90)


def test_errors_say_what_is_wrong():
    tb = A.script_to_address(p2wpkh_script(bytes(20)), "testnet4")
    with pytest.raises(AddressError, match="'tb'; mainnet uses 'bc'"):
        A.address_to_script(tb, "mainnet")
    legacy_test = A.b58check_encode(b"\x6f" + bytes(20))
    with pytest.raises(AddressError, match="version byte 0x6f"):
        A.address_to_script(legacy_test, MAINNET)
    with pytest.raises(AddressError, match="no address"):
        A.script_to_address(p2pk_script(b"\x02" + bytes(32)))
    with pytest.raises(AddressError, match="empty"):
        A.address_to_script("")


def test_regtest_and_taproot_addresses():
    script = p2tr_script(bytes(range(32)))
    addr = A.script_to_address(script, REGTEST)
    assert addr.startswith("bcrt1p")
    assert A.address_to_script(addr, "regtest") == script
    assert A.address_to_script(addr.upper(), "regtest") == script
    with pytest.raises(AddressError):
        A.address_to_script(addr, "signet")


def test_networks():
    assert get_network("main") is MAINNET and get_network("bitcoin") is MAINNET
    assert (
        get_network("test").name == "testnet3" and get_network("TESTNET4").core_name == "testnet4"
    )
    assert get_network(REGTEST) is REGTEST
    with pytest.raises(UnknownNetworkError, match="expected one of"):
        get_network("dogecoin")
    assert {n.default_port for n in NETWORKS.values()} == {8333, 18333, 48333, 38333, 18444}
    assert len({n.magic for n in NETWORKS.values()}) == 5
    assert network_from_magic(bytes.fromhex("fabfb5da")) is REGTEST
    assert network_from_magic(b"\x00" * 4) is None
    assert MAINNET.wif_prefix == 0x80 and REGTEST.bech32_hrp == "bcrt"


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=100),
        st.text(alphabet=A.B58_ALPHABET, max_size=60),
        st.text(alphabet="bc1" + A.BECH32_CHARSET + "BCQP", max_size=95),
    ),
    st.sampled_from(sorted(NETWORKS)),
)
def test_random_strings_only_raise_address_error(text, network):
    try:
        script = A.address_to_script(text, network)
    except AddressError:
        return
    # anything accepted maps back to the same address (modulo bech32 case)
    again = A.script_to_address(script, network)
    assert again == text or again == text.lower()


def test_address_info():
    p2wsh = A.script_to_address(b"\x00\x20" + bytes(range(32)), "mainnet")
    info = A.address_info(p2wsh.upper(), "mainnet")
    assert info.address == p2wsh and info.is_script and info.is_witness
    assert info.witness_version == 0 and info.witness_program == bytes(range(32))
    assert info.script_type is A.ScriptType.WITNESS_V0_SCRIPTHASH
    legacy = A.b58check_encode(b"\x00" + bytes(20))
    info = A.address_info(legacy)
    assert not info.is_script and not info.is_witness and info.witness_version is None
    assert info.script_pubkey == b"\x76\xa9\x14" + bytes(20) + b"\x88\xac"
    with pytest.raises(AddressError):
        A.address_info("bc1qnotanaddress")

"""Pure-Python RIPEMD-160 fallback: the designers' test strings, and hash160 forced onto it."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.bitcoin import hashes
from protocols.bitcoin._ripemd160 import ripemd160

# The test set published with RIPEMD-160 (Dobbertin, Bosselaers, Preneel).
VECTORS = [
    (b"", "9c1185a5c5e9fc54612808977ee8f548b2258d31"),
    (b"a", "0bdc9d2d256b3ee9daae347be6f4dc835a467ffe"),
    (b"abc", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"),
    (b"message digest", "5d0689ef49d2fae572b881b123a85ffa21595f36"),
    (b"abcdefghijklmnopqrstuvwxyz", "f71c27109c692c1b56bbdceb5b9d2865b3708dbc"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "12a053384a9c0c88e405a06c27dcf49ada62eb2b",
    ),
    (
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        "b0e20b6e3116640286ed3a87a5713079b21f5189",
    ),
    (b"1234567890" * 8, "9b752e45573d4b39f4dbd3323cab82bf63326bfb"),
    (b"a" * 100_000, "9f8a87a921acaae6f31c2e30464f6acb348ee1cc"),  # from OpenSSL
]


@pytest.mark.parametrize(("message", "digest"), VECTORS, ids=range(len(VECTORS)))
def test_standard_vectors(message, digest):
    assert ripemd160(message).hex() == digest


# Digests of bytes(range(size)) around the 55/56/64-byte padding boundaries, taken from
# OpenSSL's RIPEMD-160 (an independent implementation).
PADDING = [
    (55, "3c86963b3ff646a65ae42996e9664c747cc7e5e6"),
    (56, "ebdd79cfd4fd9949ef8089673d2620427f487cfb"),
    (57, "635b0d05be254d82503a9e1db7647dd1b5d5d6bf"),
    (63, "6d31d3d634b4a7aa15914c239576eb1956f2d9a4"),
    (64, "2581f5e9f957b44b0fa24d31996de47409dd1e0f"),
    (65, "109949b95341eeea7365e8ac4d0d3883d98f709a"),
    (119, "ad430b4283203a7b7f338b9d252dfdbf807402bf"),
    (120, "b89cdc109009f1982c8b34fca446953584d3f6c4"),
    (128, "7c4d36070c1e1176b2960a1b0dd2319d547cf8eb"),
]


@pytest.mark.parametrize(("size", "digest"), PADDING)
def test_padding_boundaries(size, digest):
    assert ripemd160(bytes(range(size))).hex() == digest


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_accepts_any_bytes_like(data):
    assert ripemd160(bytearray(data)) == ripemd160(memoryview(data)) == ripemd160(data)
    assert len(ripemd160(data)) == 20


def test_hash160_uses_fallback_when_openssl_lacks_ripemd160(monkeypatch):
    real_new = hashlib.new
    calls = []

    def new_without_ripemd(name, *args, **kwargs):
        if name.lower() == "ripemd160":
            calls.append(name)
            raise ValueError("unsupported hash type ripemd160")
        return real_new(name, *args, **kwargs)

    monkeypatch.setattr(hashes.hashlib, "new", new_without_ripemd)
    pub = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    # HASH160 of the secp256k1 generator point (private key 1), a well-known value.
    assert hashes.hash160(pub).hex() == "751e76e8199196d454941c45d1b3a323f1433bd6"
    assert calls == ["ripemd160"]

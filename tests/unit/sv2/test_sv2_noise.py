"""Noise NX handshake, certificates, transport, and the secp256k1 primitives under them."""

from __future__ import annotations

import csv
import hashlib
import random
from pathlib import Path

import pytest

from protocols.sv2 import keys, secp
from protocols.sv2.errors import (
    CertificateError,
    DecryptionError,
    FramingError,
    HandshakeError,
    KeyFormatError,
)
from protocols.sv2.framing import encode_header
from protocols.sv2.messages import DeclareMiningJob, NewTemplate
from protocols.sv2.noise import (
    ACT1_SIZE,
    ACT2_SIZE,
    CHUNK_PLAINTEXT_MAX,
    INITIAL_CK,
    INITIAL_H,
    Certificate,
    CipherState,
    NoiseInitiator,
    NoiseResponder,
    encrypted_length,
)

DATA = Path(__file__).parent / "data"
NOW = 1_800_000_000
SRI_SECRET = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n"
SRI_PUBLIC = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"


def seeded_rng(seed: int):
    r = random.Random(seed)
    return lambda n: r.randbytes(n)


@pytest.fixture
def pki():
    rng = seeded_rng(1)
    authority = keys.decode_secret_key(SRI_SECRET)
    static = rng(32)
    cert = Certificate.issue(authority, secp.xonly_from_secret(static), NOW - 60, NOW + 3600, rng)
    return authority, static, cert


def handshake(authority_xonly, static, cert, now=NOW, tamper=None):
    initiator = NoiseInitiator(authority_xonly, seeded_rng(2))
    responder = NoiseResponder(static, cert, seeded_rng(3))
    act1 = initiator.write_act1()
    act2, r_transport = responder.read_act1(act1)
    if tamper is not None:
        act2 = tamper(act2)
    i_transport = initiator.read_act2(act2, now)
    return initiator, i_transport, r_transport


# --- constants and key formats -------------------------------------------------------------


def test_sv2_noise_initial_chaining_key_and_hash() -> None:
    assert INITIAL_CK.hex() == "2eb47881208e9eee1f669f67c66ee70ea9ea88090d503fe830dc4bc83e29bf10"
    assert INITIAL_H.hex() == "922fa32e4f487c0d59caa3bed7899ce3d98db7e13dbd3b7cf2d23dd433dc6104"


def test_sv2_authority_key_formats() -> None:
    spec = keys.decode_authority_public_key("9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh")
    assert keys.encode_authority_public_key(spec) == (
        "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
    )
    secret = keys.decode_secret_key(SRI_SECRET)
    public = keys.decode_authority_public_key(SRI_PUBLIC)
    assert secp.xonly_from_secret(secret) == public
    assert keys.encode_secret_key(secret) == SRI_SECRET
    assert keys.encode_authority_public_key(public) == SRI_PUBLIC


@pytest.mark.parametrize(
    "text",
    [
        SRI_PUBLIC[:-1] + ("1" if SRI_PUBLIC[-1] != "1" else "2"),  # checksum
        SRI_SECRET,  # a secret key is not a public key (wrong version/length)
        "0OIl",  # not base58
        "",
    ],
)
def test_sv2_authority_key_format_errors(text: str) -> None:
    with pytest.raises(KeyFormatError):
        keys.decode_authority_public_key(text)


# --- secp256k1 primitives against BIP340 / BIP324 vectors ---------------------------------


def test_sv2_bip340_vectors() -> None:
    rows = list(csv.DictReader((DATA / "bip340_vectors.csv").open()))
    assert len(rows) == 15
    for row in rows:
        pub = bytes.fromhex(row["public key"])
        msg = bytes.fromhex(row["message"])
        sig = bytes.fromhex(row["signature"])
        expected = row["verification result"] == "TRUE"
        assert secp.schnorr_verify(pub, msg, sig) is expected, row["index"]
        if row["secret key"]:
            secret = bytes.fromhex(row["secret key"])
            assert secp.xonly_from_secret(secret) == pub
            assert secp.schnorr_sign(secret, msg, bytes.fromhex(row["aux_rand"])) == sig


def test_sv2_bip324_xdh_vectors() -> None:
    rows = list(csv.DictReader((DATA / "bip324_xdh_vectors.csv").open()))
    assert rows
    for row in rows:
        priv = bytes.fromhex(row["in_priv_ours"])
        ours = bytes.fromhex(row["in_ellswift_ours"])
        theirs = bytes.fromhex(row["in_ellswift_theirs"])
        initiating = row["in_initiating"] == "1"
        ell_a, ell_b = (ours, theirs) if initiating else (theirs, ours)
        assert secp.ellswift_decode(ours)[1:].hex() == row["mid_x_ours"]
        assert secp.xonly_from_secret(priv).hex() == row["mid_x_ours"]
        shared = secp.ellswift_xdh(ell_a, ell_b, priv, initiator=initiating)
        assert shared.hex() == row["mid_shared_secret"], row["in_idx"]


def test_sv2_bip324_xswiftec_decode_vectors() -> None:
    rows = list(csv.DictReader((DATA / "bip324_xswiftec_vectors.csv").open()))
    assert rows
    for row in rows:
        point = secp.ellswift_decode(bytes.fromhex(row["u"] + row["t"]))
        assert point[1:].hex() == row["x"]


def test_sv2_ellswift_roundtrip_and_xdh_agreement() -> None:
    rng = seeded_rng(9)
    a, b = rng(32), rng(32)
    ell_a = secp.ellswift_create(a, rng(32))
    ell_b = secp.ellswift_create(b, rng(32))
    assert secp.ellswift_decode(ell_a)[1:] == secp.xonly_from_secret(a)
    assert secp.ellswift_xdh(ell_a, ell_b, a, True) == secp.ellswift_xdh(ell_a, ell_b, b, False)
    # Re-encoding the same key gives another 64-byte string for the same point.
    pub = secp.ellswift_decode(ell_a)
    again = secp.ellswift_encode(pub, rng(32))
    assert again != ell_a and secp.ellswift_decode(again) == pub


# --- handshake ------------------------------------------------------------------------------


def test_sv2_full_handshake_with_certificate(pki) -> None:
    authority, static, cert = pki
    auth_x = secp.xonly_from_secret(authority)
    initiator, i_tr, r_tr = handshake(auth_x, static, cert)
    assert initiator.remote_static_xonly == secp.xonly_from_secret(static)
    assert initiator.certificate == cert
    assert i_tr.handshake_hash == r_tr.handshake_hash
    header = encode_header(0, 0x1A, 5, True)
    r_tr.feed(i_tr.encrypt_frame(header, b"hello"))
    frame = r_tr.next_frame()
    assert frame is not None and frame.payload == b"hello" and frame.header.msg_type == 0x1A
    i_tr.feed(r_tr.encrypt_frame(encode_header(0, 0x1C, 0, True), b""))
    back = i_tr.next_frame()
    assert back is not None and back.payload == b"" and back.header.msg_type == 0x1C


def test_sv2_handshake_message_sizes(pki) -> None:
    _, static, cert = pki
    initiator = NoiseInitiator(None, seeded_rng(4))
    act1 = initiator.write_act1()
    act2, _ = NoiseResponder(static, cert, seeded_rng(5)).read_act1(act1)
    assert (len(act1), len(act2)) == (ACT1_SIZE, ACT2_SIZE) == (64, 234)


@pytest.mark.parametrize("byte_index", [0, 40, 63, 64, 100, 143, 144, 170, 233])
def test_sv2_bit_flip_in_act2_rejected(pki, byte_index: int) -> None:
    authority, static, cert = pki

    def flip(act2: bytes) -> bytes:
        raw = bytearray(act2)
        raw[byte_index] ^= 0x01
        return bytes(raw)

    with pytest.raises(HandshakeError):
        handshake(secp.xonly_from_secret(authority), static, cert, tamper=flip)


def test_sv2_truncated_act2_rejected(pki) -> None:
    authority, static, cert = pki
    with pytest.raises(HandshakeError):
        handshake(secp.xonly_from_secret(authority), static, cert, tamper=lambda a: a[:-1])


def test_sv2_wrong_authority_key_rejected(pki) -> None:
    _, static, cert = pki
    other = secp.xonly_from_secret(seeded_rng(77)(32))
    with pytest.raises(CertificateError, match="signature"):
        handshake(other, static, cert)


def test_sv2_certificate_for_another_static_key_rejected(pki) -> None:
    authority, static, _ = pki
    other_static = seeded_rng(78)(32)
    cert = Certificate.issue(
        authority, secp.xonly_from_secret(other_static), NOW - 60, NOW + 60, seeded_rng(6)
    )
    with pytest.raises(CertificateError):
        handshake(secp.xonly_from_secret(authority), static, cert)


def test_sv2_bad_signature_rejected(pki) -> None:
    authority, static, cert = pki
    sig = bytearray(cert.signature)
    sig[10] ^= 0x80
    forged = Certificate(cert.version, cert.valid_from, cert.not_valid_after, bytes(sig))
    with pytest.raises(CertificateError):
        handshake(secp.xonly_from_secret(authority), static, forged)
    # Extending the validity window invalidates the signature too.
    stretched = Certificate(cert.version, cert.valid_from, cert.not_valid_after + 1, cert.signature)
    with pytest.raises(CertificateError):
        handshake(secp.xonly_from_secret(authority), static, stretched)


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (NOW - 60, True),
        (NOW - 70, True),  # 10 s leeway before valid_from
        (NOW - 71, False),  # not yet valid
        (NOW + 3600, True),
        (NOW + 3610, True),  # 10 s leeway after not_valid_after
        (NOW + 3611, False),  # expired
    ],
)
def test_sv2_certificate_validity_window(pki, now: int, accepted: bool) -> None:
    authority, static, cert = pki
    auth_x = secp.xonly_from_secret(authority)
    if accepted:
        handshake(auth_x, static, cert, now=now)
    else:
        with pytest.raises(CertificateError, match="valid"):
            handshake(auth_x, static, cert, now=now)


def test_sv2_certificate_encoding(pki) -> None:
    authority, static, cert = pki
    raw = cert.encode()
    assert len(raw) == 74
    assert raw[:10] == (0).to_bytes(2, "little") + (NOW - 60).to_bytes(4, "little") + (
        NOW + 3600
    ).to_bytes(4, "little")
    assert Certificate.decode(raw) == cert
    digest = hashlib.sha256(raw[:10] + secp.xonly_from_secret(static)).digest()
    assert secp.schnorr_verify(secp.xonly_from_secret(authority), digest, raw[10:])


def test_sv2_initiator_without_authority_accepts_any_certificate(pki) -> None:
    _, static, cert = pki
    expired = Certificate(0, 1, 2, cert.signature)
    initiator, _, _ = handshake(None, static, expired)
    assert initiator.remote_static_xonly == secp.xonly_from_secret(static)


# --- transport ------------------------------------------------------------------------------


def test_sv2_cipher_state_failed_decrypt_keeps_nonce() -> None:
    send, recv = CipherState(bytes(32)), CipherState(bytes(32))
    ct = send.encrypt(b"", b"abc")
    with pytest.raises(DecryptionError):
        recv.decrypt(b"", ct[:-1] + bytes([ct[-1] ^ 1]))
    assert recv.n == 0
    assert recv.decrypt(b"", ct) == b"abc"
    assert recv.n == 1
    # nonce layout: 4 zero bytes then n as U64 LE (RFC 8439 AEAD)
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    expected = ChaCha20Poly1305(bytes(32)).encrypt(
        b"\0" * 4 + (1).to_bytes(8, "little"), b"x", None
    )
    assert send.encrypt(b"", b"x") == expected


def test_sv2_tampered_transport_frame_rejected(pki) -> None:
    authority, static, cert = pki
    _, i_tr, r_tr = handshake(secp.xonly_from_secret(authority), static, cert)
    wire = bytearray(i_tr.encrypt_frame(encode_header(0, 0x1A, 24, True), bytes(24)))
    wire[30] ^= 0x04  # inside the payload chunk
    r_tr.feed(bytes(wire))
    with pytest.raises(DecryptionError):
        r_tr.next_frame()
    _, i_tr, r_tr = handshake(secp.xonly_from_secret(authority), static, cert)
    wire = bytearray(i_tr.encrypt_frame(encode_header(0, 0x1A, 24, True), bytes(24)))
    wire[2] ^= 0x04  # inside the encrypted header
    r_tr.feed(bytes(wire))
    with pytest.raises(DecryptionError):
        r_tr.next_frame()


def test_sv2_transport_rejects_oversized_announced_length(pki) -> None:
    authority, static, cert = pki
    _, i_tr, r_tr = handshake(secp.xonly_from_secret(authority), static, cert)
    r_tr.max_payload = 1000
    r_tr.feed(i_tr.encrypt_frame(encode_header(0, 0x71, 1001, False), bytes(1001)))
    with pytest.raises(FramingError):
        r_tr.next_frame()


def test_sv2_encrypted_length_chunking() -> None:
    assert CHUNK_PLAINTEXT_MAX == 65519
    assert encrypted_length(0) == 0
    assert encrypted_length(1) == 17
    assert encrypted_length(65519) == 65535
    assert encrypted_length(65520) == 65535 + 17
    assert encrypted_length(3 * 65519) == 3 * 65535


@pytest.mark.parametrize("size", [0, 1, 65518, 65519, 65520, 131038, 131039, 200_000])
def test_sv2_transport_chunk_boundaries(pki, size: int) -> None:
    authority, static, cert = pki
    _, i_tr, r_tr = handshake(secp.xonly_from_secret(authority), static, cert)
    payload = random.Random(size).randbytes(size)
    wire = i_tr.encrypt_frame(encode_header(0, 0x56, size, False), payload)
    assert len(wire) == 22 + encrypted_length(size)
    # Deliver in odd pieces: nothing completes early, everything completes at the end.
    step = 7919
    for start in range(0, len(wire), step):
        r_tr.feed(wire[start : start + step])
        frame = r_tr.next_frame()
        if start + step < len(wire):
            assert frame is None
    assert frame is not None and frame.payload == payload


def test_sv2_large_template_and_declare_job_chunked(pki) -> None:
    authority, static, cert = pki
    _, i_tr, r_tr = handshake(secp.xonly_from_secret(authority), static, cert)
    rnd = random.Random(5)
    template = NewTemplate(
        9, True, 0x20000000, 2, rnd.randbytes(100), 0xFFFFFFFF, 312_500_000, 3,
        rnd.randbytes(65535), 0, tuple(rnd.randbytes(32) for _ in range(255)),
    )  # fmt: skip
    declare = DeclareMiningJob(
        1, rnd.randbytes(255), 0x20000000, rnd.randbytes(60000), rnd.randbytes(60000),
        tuple(rnd.randbytes(32) for _ in range(4000)), rnd.randbytes(100),
    )  # fmt: skip
    for msg in (template, declare):
        payload = msg.encode_payload()
        assert len(payload) > 65519
        header = encode_header(msg.EXTENSION_TYPE, msg.MSG_TYPE, len(payload), msg.CHANNEL_MSG)
        wire = r_tr.encrypt_frame(header, payload)
        chunks = -(-len(payload) // 65519)
        assert len(wire) == 22 + len(payload) + 16 * chunks
        i_tr.feed(wire)
        frame = i_tr.next_frame()
        assert frame is not None
        assert type(msg).decode_payload(frame.payload) == msg

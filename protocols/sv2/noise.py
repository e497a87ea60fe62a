"""Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256: handshake state machines and transport.

Sans-IO: the initiator produces act 1 (64 bytes), consumes act 2 (234 bytes = 64 ephemeral +
80 encrypted static key + 90 encrypted certificate) and returns a `NoiseTransport`; the
responder consumes act 1 and produces act 2 plus its transport. Time (`now`, Unix seconds) and
randomness (`rng(n) -> bytes`) are passed in. Handshake messages carry no SV2 frame header.

Transport: every SV2 frame is sent as Enc(6-byte header) followed by the payload split into
chunks of at most 65519 bytes, each encrypted on its own (+16-byte MAC, one nonce each).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocols.sv2 import secp
from protocols.sv2.errors import (
    CertificateError,
    ConnectionStateError,
    DecryptionError,
    FramingError,
    HandshakeError,
    NoiseError,
)
from protocols.sv2.framing import HEADER_SIZE, MAX_PAYLOAD, Frame, FrameHeader

__all__ = [
    "ACT1_SIZE",
    "ACT2_SIZE",
    "CERT_LEEWAY_SECONDS",
    "CHUNK_PLAINTEXT_MAX",
    "ENCRYPTED_HEADER_SIZE",
    "INITIAL_CK",
    "INITIAL_H",
    "PROTOCOL_NAME",
    "Certificate",
    "CipherState",
    "NoiseInitiator",
    "NoiseResponder",
    "NoiseTransport",
    "SymmetricState",
    "encrypted_length",
]

Rng = Callable[[int], bytes]

PROTOCOL_NAME = b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256"
INITIAL_CK = hashlib.sha256(PROTOCOL_NAME).digest()
INITIAL_H = hashlib.sha256(INITIAL_CK).digest()  # MixHash of the empty prologue

ELLSWIFT_SIZE = 64
MAC_SIZE = 16
CERT_SIZE = 74
ACT1_SIZE = ELLSWIFT_SIZE
ACT2_SIZE = ELLSWIFT_SIZE + (ELLSWIFT_SIZE + MAC_SIZE) + (CERT_SIZE + MAC_SIZE)
ENCRYPTED_HEADER_SIZE = HEADER_SIZE + MAC_SIZE
CHUNK_MAX = 65535
CHUNK_PLAINTEXT_MAX = CHUNK_MAX - MAC_SIZE  # 65519
CERT_LEEWAY_SECONDS = 10  # SRI tolerates this much clock drift either side
_NONCE_LIMIT = (1 << 64) - 1  # the all-ones nonce is reserved by Noise
_NONCE = struct.Struct("<4xQ")  # 32 zero bits, then the 64-bit counter (little-endian)
_HEADER_FIELDS = struct.Struct("<HBHB")  # extension_type, msg_type, msg_length (16 + 8 bits)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def _hkdf2(ck: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp = _hmac(ck, ikm)
    out1 = _hmac(temp, b"\x01")
    out2 = _hmac(temp, out1 + b"\x02")
    return out1, out2


def encrypted_length(plain_length: int) -> int:
    """Bytes on the wire for an encrypted payload of `plain_length` bytes (header excluded)."""
    chunks = -(-plain_length // CHUNK_PLAINTEXT_MAX)
    return plain_length + chunks * MAC_SIZE


class CipherState:
    """ChaCha20-Poly1305 with a 64-bit counter nonce; failed decryption leaves `n` unchanged."""

    __slots__ = ("_aead", "k", "n")

    def __init__(self, k: bytes | None = None) -> None:
        self.k = k
        self.n = 0
        self._aead = ChaCha20Poly1305(k) if k is not None else None

    @property
    def has_key(self) -> bool:
        return self._aead is not None

    def _nonce(self) -> bytes:
        if self.n >= _NONCE_LIMIT:
            raise NoiseError("nonce space exhausted; reconnect")
        return _NONCE.pack(self.n)

    # The AEAD reads any bytes-like object (a memoryview into the receive buffer): no copy.
    def encrypt(self, ad: bytes, plaintext: bytes | memoryview) -> bytes:
        if self._aead is None:
            return bytes(plaintext)
        ct = self._aead.encrypt(self._nonce(), plaintext, ad or None)
        self.n += 1
        return ct

    def decrypt(self, ad: bytes, ciphertext: bytes | memoryview) -> bytes:
        aead = self._aead
        if aead is None:
            return bytes(ciphertext)
        n = self.n  # `_nonce` inlined: this runs twice per received frame
        if n >= _NONCE_LIMIT:
            raise NoiseError("nonce space exhausted; reconnect")
        try:
            pt = aead.decrypt(_NONCE.pack(n), ciphertext, ad or None)
        except InvalidTag:
            raise DecryptionError("MAC check failed") from None
        self.n += 1
        return pt


class SymmetricState:
    """Noise ck/h bookkeeping (MixHash, MixKey, EncryptAndHash, DecryptAndHash, Split)."""

    __slots__ = ("cipher", "ck", "h")

    def __init__(self) -> None:
        self.ck = INITIAL_CK
        self.h = INITIAL_H
        self.cipher = CipherState()

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, k = _hkdf2(self.ck, ikm)
        self.cipher = CipherState(k)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ct = self.cipher.encrypt(self.h, plaintext)
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        pt = self.cipher.decrypt(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return pt

    def split(self) -> tuple[CipherState, CipherState]:
        """(initiator->responder, responder->initiator) cipher states."""
        k1, k2 = _hkdf2(self.ck, b"")
        return CipherState(k1), CipherState(k2)


@dataclass(frozen=True, slots=True)
class Certificate:
    """SIGNATURE_NOISE_MESSAGE: the authority's BIP340 signature over the server static key.

    Signed message: SHA256(version U16 || valid_from U32 || not_valid_after U32 || x-only key).
    """

    version: int
    valid_from: int
    not_valid_after: int
    signature: bytes

    _HEAD = struct.Struct("<HII")

    def encode(self) -> bytes:
        if len(self.signature) != 64:
            raise ValueError("signature is 64 bytes")
        return self._HEAD.pack(self.version, self.valid_from, self.not_valid_after) + bytes(
            self.signature
        )

    @classmethod
    def decode(cls, data: bytes) -> Certificate:
        if len(data) != CERT_SIZE:
            raise HandshakeError(f"certificate is {len(data)} bytes, expected {CERT_SIZE}")
        version, valid_from, not_valid_after = cls._HEAD.unpack_from(data)
        return cls(version, valid_from, not_valid_after, bytes(data[10:]))

    def signed_hash(self, static_xonly: bytes) -> bytes:
        head = self._HEAD.pack(self.version, self.valid_from, self.not_valid_after)
        return hashlib.sha256(head + static_xonly).digest()

    @classmethod
    def issue(
        cls,
        authority_secret: bytes,
        static_xonly: bytes,
        valid_from: int,
        not_valid_after: int,
        rng: Rng = os.urandom,
        version: int = 0,
    ) -> Certificate:
        """Sign a certificate for a server static key with the authority secret key."""
        unsigned = cls(version, valid_from, not_valid_after, bytes(64))
        sig = secp.schnorr_sign(authority_secret, unsigned.signed_hash(static_xonly), rng(32))
        return cls(version, valid_from, not_valid_after, sig)

    def verify(
        self,
        authority_xonly: bytes,
        static_xonly: bytes,
        now: int,
        leeway: int = CERT_LEEWAY_SECONDS,
    ) -> None:
        """Raise `CertificateError` unless valid at `now` and signed by the authority."""
        if self.version != 0:
            raise CertificateError(f"unsupported certificate version {self.version}")
        if not (self.valid_from - leeway <= now <= self.not_valid_after + leeway):
            raise CertificateError(
                f"certificate valid {self.valid_from}..{self.not_valid_after}, now is {now}"
            )
        if not secp.schnorr_verify(authority_xonly, self.signed_hash(static_xonly), self.signature):
            raise CertificateError("certificate signature does not verify against authority key")


def _random_secret(rng: Rng) -> bytes:
    for _ in range(16):
        candidate = rng(32)
        if secp.is_valid_secret(candidate):
            return candidate
    raise NoiseError("rng does not produce valid secret keys")


class NoiseInitiator:
    """Client side. `authority_xonly=None` skips certificate checks (SRI allows it; avoid)."""

    def __init__(self, authority_xonly: bytes | None, rng: Rng = os.urandom) -> None:
        if authority_xonly is not None and not secp.schnorr_point_is_valid(authority_xonly):
            raise ValueError("authority key is not a valid x-only public key")
        self.authority_xonly = authority_xonly
        self._rng = rng
        self._state = SymmetricState()
        self._e_secret = _random_secret(rng)
        self._ell_e: bytes | None = None
        self.remote_static_xonly: bytes | None = None
        self.certificate: Certificate | None = None

    def write_act1(self) -> bytes:
        if self._ell_e is not None:
            raise ConnectionStateError("act 1 already written")
        self._ell_e = secp.ellswift_create(self._e_secret, self._rng(32))
        self._state.mix_hash(self._ell_e)
        self._state.encrypt_and_hash(b"")  # empty payload, no key yet: MixHash(b"")
        return self._ell_e

    def read_act2(self, data: bytes, now: int) -> NoiseTransport:
        if self._ell_e is None:
            raise ConnectionStateError("write act 1 first")
        if len(data) != ACT2_SIZE:
            raise HandshakeError(f"act 2 is {len(data)} bytes, expected {ACT2_SIZE}")
        st = self._state
        ell_re = bytes(data[:64])
        st.mix_hash(ell_re)
        st.mix_key(secp.ellswift_xdh(self._ell_e, ell_re, self._e_secret, initiator=True))
        try:
            ell_s = st.decrypt_and_hash(bytes(data[64:144]))
        except DecryptionError:
            raise HandshakeError("act 2: static key fails authentication") from None
        st.mix_key(secp.ellswift_xdh(self._ell_e, ell_s, self._e_secret, initiator=True))
        try:
            cert_bytes = st.decrypt_and_hash(bytes(data[144:]))
        except DecryptionError:
            raise HandshakeError("act 2: certificate fails authentication") from None
        cert = Certificate.decode(cert_bytes)
        static_xonly = secp.ellswift_decode(ell_s)[1:]
        if self.authority_xonly is not None:
            cert.verify(self.authority_xonly, static_xonly, now)
        self.remote_static_xonly = static_xonly
        self.certificate = cert
        send, recv = st.split()
        return NoiseTransport(send, recv, st.h)


class NoiseResponder:
    """Server side: holds the static key and the certificate the authority issued for it."""

    def __init__(self, static_secret: bytes, certificate: Certificate, rng: Rng = os.urandom):
        if not secp.is_valid_secret(static_secret):
            raise ValueError("static secret must be 32 bytes in 1..n-1")
        self._s_secret = static_secret
        self.static_xonly = secp.xonly_from_secret(static_secret)
        self.certificate = certificate
        self._rng = rng
        self._done = False

    def read_act1(self, data: bytes) -> tuple[bytes, NoiseTransport]:
        """Consume act 1; return (act 2 bytes, transport)."""
        if self._done:
            raise ConnectionStateError("handshake already answered")
        if len(data) != ACT1_SIZE:
            raise HandshakeError(f"act 1 is {len(data)} bytes, expected {ACT1_SIZE}")
        self._done = True
        st = SymmetricState()
        ell_e = bytes(data)
        st.mix_hash(ell_e)
        st.decrypt_and_hash(b"")
        re_secret = _random_secret(self._rng)
        ell_re = secp.ellswift_create(re_secret, self._rng(32))
        st.mix_hash(ell_re)
        st.mix_key(secp.ellswift_xdh(ell_e, ell_re, re_secret, initiator=False))
        ell_s = secp.ellswift_create(self._s_secret, self._rng(32))
        enc_static = st.encrypt_and_hash(ell_s)
        st.mix_key(secp.ellswift_xdh(ell_e, ell_s, self._s_secret, initiator=False))
        enc_cert = st.encrypt_and_hash(self.certificate.encode())
        to_responder, to_initiator = st.split()
        return ell_re + enc_static + enc_cert, NoiseTransport(to_initiator, to_responder, st.h)


class NoiseTransport:
    """Encrypts outgoing SV2 frames and reassembles/decrypts incoming ones."""

    def __init__(
        self,
        send: CipherState,
        recv: CipherState,
        handshake_hash: bytes,
        max_payload: int = MAX_PAYLOAD,
    ) -> None:
        self._send = send
        self._recv = recv
        self.handshake_hash = handshake_hash
        self.max_payload = max_payload
        self._buf = bytearray()
        self._pos = 0  # bytes of `_buf` already consumed (compacted on the next feed)
        self._header: tuple[int, int, int] | None = None  # decrypted, payload pending

    def encrypt_frame(self, header: bytes, payload: bytes) -> bytes:
        """Encrypt one SV2 frame given its 6-byte plaintext header and payload."""
        if len(header) != HEADER_SIZE:
            raise ValueError("header is 6 bytes")
        enc = self._send.encrypt
        if 0 < len(payload) <= CHUNK_PLAINTEXT_MAX:  # the common case: one chunk
            return enc(b"", header) + enc(b"", payload)
        parts = [enc(b"", header)]
        view = memoryview(payload)
        for start in range(0, len(payload), CHUNK_PLAINTEXT_MAX):
            parts.append(enc(b"", view[start : start + CHUNK_PLAINTEXT_MAX]))
        return b"".join(parts)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        # Consumed bytes are dropped once per read, not once per frame: the buffer still
        # holds only what has arrived and is not yet decrypted.
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> Frame | None:
        """The next decrypted frame, or None until enough ciphertext has arrived."""
        for ext, msg_type, payload in self.iter_frames():
            return Frame(FrameHeader(ext, msg_type, len(payload)), payload)
        return None

    def iter_frames(self) -> Iterator[tuple[int, int, bytes]]:
        """Decrypt buffered frames one at a time as (extension_type, msg_type, payload).

        The receive hot path: the nonce, header decode and one-chunk payloads are inlined and
        no object is built per frame. A frame split across reads resumes on the next call.
        Stopping early (or an error) leaves the rest buffered; a failed MAC check leaves the
        receive nonce unchanged.
        """
        recv = self._recv
        aead = recv._aead
        buf = self._buf
        view = memoryview(buf)
        header = self._header
        pos = self._pos
        n = recv.n
        nonce = _NONCE.pack
        try:
            while True:
                if header is None:
                    end = pos + ENCRYPTED_HEADER_SIZE
                    if len(buf) < end:
                        return
                    if n >= _NONCE_LIMIT - 1:  # room for the header and its payload
                        raise NoiseError("nonce space exhausted; reconnect")
                    try:
                        plain = aead.decrypt(nonce(n), view[pos:end], None)
                    except InvalidTag:
                        raise DecryptionError("MAC check failed") from None
                    n += 1
                    ext, msg_type, low, high = _HEADER_FIELDS.unpack(plain)
                    length = low | high << 16
                    if length > self.max_payload:
                        raise FramingError(
                            f"frame announces {length} bytes, limit is {self.max_payload}"
                        )
                    header = (ext, msg_type, length)
                    pos = self._pos = end
                    self._header = header
                length = header[2]
                if not length:
                    payload = b""
                    end = pos
                elif length <= CHUNK_PLAINTEXT_MAX:
                    end = pos + length + MAC_SIZE
                    if len(buf) < end:
                        return
                    try:
                        payload = aead.decrypt(nonce(n), view[pos:end], None)
                    except InvalidTag:
                        raise DecryptionError("MAC check failed") from None
                    n += 1
                else:
                    end = pos + encrypted_length(length)
                    if len(buf) < end:
                        return
                    recv.n = n
                    payload = b"".join(
                        recv.decrypt(b"", view[start : min(start + CHUNK_MAX, end)])
                        for start in range(pos, end, CHUNK_MAX)
                    )
                    n = recv.n
                pos = self._pos = end
                self._header = None
                recv.n = n
                yield header[0], header[1], payload
                header = None
        finally:
            recv.n = n
            view.release()

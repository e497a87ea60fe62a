"""secp256k1 primitives the Noise handshake needs, through the libsecp256k1 inside coincurve.

coincurve (>=20) compiles libsecp256k1 with the ElligatorSwift and Schnorr modules and exposes
their C functions through its cffi `lib`; coincurve's Python API covers BIP340 but not
ElligatorSwift, so those calls go straight to `lib` here. Keep every raw call in this module.
"""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey, PublicKeyXOnly
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

__all__ = [
    "CURVE_ORDER",
    "ellswift_create",
    "ellswift_decode",
    "ellswift_encode",
    "ellswift_xdh",
    "is_valid_secret",
    "schnorr_point_is_valid",
    "schnorr_sign",
    "schnorr_verify",
    "xonly_from_secret",
]

CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_CTX = GLOBAL_CONTEXT.ctx


def is_valid_secret(secret: bytes) -> bool:
    return len(secret) == 32 and 0 < int.from_bytes(secret, "big") < CURVE_ORDER


def _require_secret(secret: bytes) -> None:
    if not is_valid_secret(secret):
        raise ValueError("secret key must be 32 bytes in 1..n-1")


def ellswift_create(secret: bytes, aux_rand: bytes) -> bytes:
    """64-byte ElligatorSwift encoding of secret*G (aux_rand: 32 random bytes)."""
    _require_secret(secret)
    if len(aux_rand) != 32:
        raise ValueError("aux_rand must be 32 bytes")
    out = ffi.new("unsigned char[64]")
    if not lib.secp256k1_ellswift_create(_CTX, out, secret, aux_rand):
        raise ValueError("secp256k1_ellswift_create failed")
    return bytes(ffi.buffer(out, 64))


def ellswift_encode(pubkey33: bytes, rnd: bytes) -> bytes:
    """64-byte ElligatorSwift encoding of a compressed public key."""
    pk = PublicKey(pubkey33)
    if len(rnd) != 32:
        raise ValueError("rnd must be 32 bytes")
    out = ffi.new("unsigned char[64]")
    if not lib.secp256k1_ellswift_encode(_CTX, out, pk.public_key, rnd):
        raise ValueError("secp256k1_ellswift_encode failed")
    return bytes(ffi.buffer(out, 64))


def ellswift_decode(ell64: bytes) -> bytes:
    """Compressed (33-byte) public key for any 64-byte string (every string decodes)."""
    if len(ell64) != 64:
        raise ValueError("ElligatorSwift encoding is 64 bytes")
    pk = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ellswift_decode(_CTX, pk, ell64):
        raise ValueError("secp256k1_ellswift_decode failed")
    return PublicKey(pk).format(compressed=True)


def ellswift_xdh(ell_a: bytes, ell_b: bytes, secret: bytes, initiator: bool) -> bytes:
    """BIP324 x-only ECDH: SHA256_tagged("bip324_ellswift_xonly_ecdh", ell_a||ell_b||x).

    `ell_a` is always the initiator's encoding; `initiator` says whose secret this is.
    """
    _require_secret(secret)
    if len(ell_a) != 64 or len(ell_b) != 64:
        raise ValueError("ElligatorSwift encodings are 64 bytes")
    out = ffi.new("unsigned char[32]")
    ok = lib.secp256k1_ellswift_xdh(
        _CTX,
        out,
        ell_a,
        ell_b,
        secret,
        0 if initiator else 1,
        lib.secp256k1_ellswift_xdh_hash_function_bip324,
        ffi.NULL,
    )
    if not ok:
        raise ValueError("secp256k1_ellswift_xdh failed")
    return bytes(ffi.buffer(out, 32))


def xonly_from_secret(secret: bytes) -> bytes:
    """BIP340 x-only public key (32 bytes) of a secret key."""
    _require_secret(secret)
    return PublicKeyXOnly.from_secret(secret).format()


def schnorr_sign(secret: bytes, msg32: bytes, aux_rand: bytes) -> bytes:
    """BIP340 signature over a 32-byte message."""
    _require_secret(secret)
    if len(aux_rand) != 32:
        raise ValueError("aux_rand must be 32 bytes")
    return PrivateKey(secret).sign_schnorr(msg32, aux_rand)


def schnorr_verify(xonly: bytes, msg32: bytes, signature: bytes) -> bool:
    """BIP340 verification; False for malformed keys or signatures instead of raising."""
    if len(xonly) != 32 or len(signature) != 64 or len(msg32) != 32:
        return False
    try:
        key = PublicKeyXOnly(xonly)
    except ValueError:
        return False
    return key.verify(signature, msg32)


def schnorr_point_is_valid(xonly: bytes) -> bool:
    """True when 32 bytes are the x coordinate of a curve point (a usable BIP340 key)."""
    if len(xonly) != 32:
        return False
    try:
        PublicKeyXOnly(xonly)
    except ValueError:
        return False
    return True

"""Taproot (BIP341) commitments: leaf/branch hashes, script trees, key tweaks, control blocks.

Curve arithmetic goes through coincurve (libsecp256k1); everything else is hashing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import coincurve

from protocols.bitcoin.compact import compact_size
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.hashes import tagged_hash

TAPSCRIPT_LEAF_VERSION = 0xC0
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class TaprootError(BitcoinProtocolError):
    """An invalid key, tweak or script tree."""


def tapleaf_hash(script: bytes, leaf_version: int = TAPSCRIPT_LEAF_VERSION) -> bytes:
    """TapLeaf tagged hash of ``leaf_version || compact_size(len(script)) || script``."""
    return tagged_hash("TapLeaf", bytes((leaf_version,)) + compact_size(len(script)) + script)


def tapbranch_hash(a: bytes, b: bytes) -> bytes:
    """TapBranch tagged hash of two child hashes in lexicographic order."""
    return tagged_hash("TapBranch", a + b if a < b else b + a)


@dataclass(frozen=True, slots=True)
class TapLeaf:
    script: bytes
    leaf_version: int = TAPSCRIPT_LEAF_VERSION

    @property
    def hash(self) -> bytes:
        return tapleaf_hash(self.script, self.leaf_version)


# A script tree: a leaf, or a pair (left, right) of trees.
TapTree = TapLeaf | tuple["TapTree", "TapTree"]


def tree_hash_and_paths(tree: TapTree) -> tuple[bytes, list[tuple[TapLeaf, list[bytes]]]]:
    """Merkle root of ``tree`` and, per leaf in depth-first order, its merkle path."""
    if isinstance(tree, TapLeaf):
        return tree.hash, [(tree, [])]
    left, right = tree
    lh, lpaths = tree_hash_and_paths(left)
    rh, rpaths = tree_hash_and_paths(right)
    paths = [(leaf, [*path, rh]) for leaf, path in lpaths]
    paths += [(leaf, [*path, lh]) for leaf, path in rpaths]
    return tapbranch_hash(lh, rh), paths


def taproot_tweak(internal_key: bytes, merkle_root: bytes | None) -> bytes:
    """TapTweak tagged hash of the x-only internal key and the tree root (if any)."""
    if len(internal_key) != 32:
        raise TaprootError("internal key must be a 32-byte x-only key")
    return tagged_hash("TapTweak", internal_key + (merkle_root or b""))


def taproot_output_key(internal_key: bytes, merkle_root: bytes | None) -> tuple[bytes, int]:
    """(x-only output key, parity of its y) = internal key + tweak·G."""
    tweak = taproot_tweak(internal_key, merkle_root)
    if int.from_bytes(tweak, "big") >= SECP256K1_ORDER:
        raise TaprootError("taproot tweak is not below the curve order")
    try:
        key = coincurve.PublicKeyXOnly(internal_key)
        key.tweak_add(tweak)
    except ValueError as exc:
        raise TaprootError(f"cannot tweak internal key: {exc}") from None
    return key.format(), int(key.parity)


def tweak_private_key(secret: bytes, merkle_root: bytes | None) -> bytes:
    """Private key for the key-path spend of the output built from ``secret``'s public key."""
    priv = coincurve.PrivateKey(secret)
    pub = priv.public_key.format(compressed=True)
    d = int.from_bytes(secret, "big")
    if pub[0] == 3:
        d = SECP256K1_ORDER - d
    t = int.from_bytes(taproot_tweak(pub[1:], merkle_root), "big")
    if t >= SECP256K1_ORDER:
        raise TaprootError("taproot tweak is not below the curve order")
    tweaked = (d + t) % SECP256K1_ORDER
    if tweaked == 0:
        raise TaprootError("tweaked private key is zero")
    return tweaked.to_bytes(32, "big")


def control_block(
    internal_key: bytes, output_parity: int, leaf_version: int, path: Sequence[bytes]
) -> bytes:
    """Control block for a script-path spend: (leaf_version | parity) || key || path."""
    return bytes((leaf_version | output_parity,)) + internal_key + b"".join(path)

"""A private key that spends P2WPKH and P2TR (key path) outputs.

secp256k1 work goes through coincurve (libsecp256k1); signature hashes and the
taproot tweak come from ``protocols.bitcoin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import coincurve

from protocols.bitcoin.hashes import hash160, sha256
from protocols.bitcoin.script import p2tr_script, p2wpkh_script
from protocols.bitcoin.sighash import (
    PrecomputedTxData,
    SigHash,
    p2wpkh_script_code,
    segwit_v0_sighash,
    taproot_sighash,
)
from protocols.bitcoin.taproot import SECP256K1_ORDER, taproot_output_key, tweak_private_key
from protocols.bitcoin.tx import Tx, TxOut


@dataclass(slots=True)
class WalletKey:
    """One secp256k1 key with its P2WPKH and taproot (no script tree) outputs."""

    secret: bytes
    _key: coincurve.PrivateKey = field(init=False, repr=False)
    _tweaked: coincurve.PrivateKey = field(init=False, repr=False)
    pubkey: bytes = field(init=False)
    output_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self._key = coincurve.PrivateKey(self.secret)
        self.pubkey = self._key.public_key.format(compressed=True)
        self._tweaked = coincurve.PrivateKey(tweak_private_key(self.secret, None))
        self.output_key, _ = taproot_output_key(self.pubkey[1:], None)

    @classmethod
    def from_seed(cls, seed: bytes, index: int) -> WalletKey:
        """Deterministic key ``index`` of ``seed`` (regtest workloads and tests only)."""
        value = int.from_bytes(sha256(seed + index.to_bytes(8, "big")), "big")
        return cls((value % (SECP256K1_ORDER - 1) + 1).to_bytes(32, "big"))

    @property
    def p2wpkh(self) -> bytes:
        return p2wpkh_script(hash160(self.pubkey))

    @property
    def p2tr(self) -> bytes:
        return p2tr_script(self.output_key)

    def sign_p2wpkh(
        self, tx: Tx, index: int, amount: int, pre: PrecomputedTxData | None = None
    ) -> None:
        """Fill input ``index``'s witness with an ECDSA SIGHASH_ALL signature (BIP143)."""
        code = p2wpkh_script_code(hash160(self.pubkey))
        digest = segwit_v0_sighash(tx, index, code, amount, SigHash.ALL, pre)
        sig = self._key.sign(digest, hasher=None)
        tx.inputs[index].witness = [sig + bytes((SigHash.ALL,)), self.pubkey]

    def sign_p2tr(
        self,
        tx: Tx,
        index: int,
        spent_outputs: Sequence[TxOut],
        pre: PrecomputedTxData | None = None,
    ) -> None:
        """Fill input ``index``'s witness with a BIP340 key-path signature (SIGHASH_DEFAULT)."""
        digest = taproot_sighash(tx, index, spent_outputs, SigHash.DEFAULT, precomputed=pre)
        aux = sha256(digest + index.to_bytes(4, "little"))
        tx.inputs[index].witness = [self._tweaked.sign_schnorr(digest, aux)]

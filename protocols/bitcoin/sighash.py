"""Signature hashes: legacy (pre-segwit), BIP143 (segwit v0) and BIP341 (taproot).

Each function returns the 32-byte digest a signature commits to, in the byte order
signing libraries take (Core's uint256 as stored; ``.hex()`` of the reverse equals
what Core's ``GetHex`` prints). The per-transaction hashes that BIP143 and BIP341
share are computed once in :class:`PrecomputedTxData`, so checking every input of
a large transaction stays linear.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from protocols.bitcoin.compact import compact_size
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.hashes import sha256d, tagged_hash
from protocols.bitcoin.taproot import tapbranch_hash, tapleaf_hash  # noqa: F401 (re-export)
from protocols.bitcoin.tx import Tx, TxOut

_sha256 = hashlib.sha256
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from

ONE_HASH = (1).to_bytes(32, "little")  # Core's "uint256::ONE" returned by the SINGLE bug
SIGHASH_NULL_OUTPUT = b"\xff" * 8 + b"\x00"  # CTxOut() serialized: value -1, empty script
CODESEP_NONE = 0xFFFFFFFF


class SigHash(enum.IntEnum):
    DEFAULT = 0x00  # taproot only: like ALL, signature has no hash-type byte
    ALL = 0x01
    NONE = 0x02
    SINGLE = 0x03
    ANYONECANPAY = 0x80
    ALL_ANYONECANPAY = 0x81
    NONE_ANYONECANPAY = 0x82
    SINGLE_ANYONECANPAY = 0x83


class SighashError(BitcoinProtocolError):
    """A signature hash that cannot be computed (bad hash type, index, missing prevouts)."""


# -- legacy ------------------------------------------------------------------------------


def _without_codeseparators(script: bytes) -> bytes:
    """Serialize a script code as Core's CTransactionSignatureSerializer does.

    OP_CODESEPARATORs are dropped. A truncated push ends the scan; Core then writes the
    declared length (script size minus separators seen) but only the bytes up to where
    parsing failed, so the hashed serialization is short. That quirk is reproduced.
    """
    n = len(script)
    pos = 0
    start = 0
    pieces: list[bytes] = []
    separators = 0
    while pos < n:
        op = script[pos]
        pos += 1
        if op <= 0x4E:
            if op < 0x4C:
                size = op
            elif op == 0x4C:
                if n - pos < 1:
                    break
                size = script[pos]
                pos += 1
            elif op == 0x4D:
                if n - pos < 2:
                    break
                size = _U16(script, pos)[0]
                pos += 2
            else:
                if n - pos < 4:
                    break
                size = _U32(script, pos)[0]
                pos += 4
            if n - pos < size:
                break
            pos += size
        elif op == 0xAB:
            separators += 1
            pieces.append(script[start : pos - 1])
            start = pos
    if start != n:
        pieces.append(script[start:pos])
    return compact_size(n - separators) + b"".join(pieces)


def legacy_sighash(tx: Tx, input_index: int, script_code: bytes, hash_type: int) -> bytes:
    """Core's SignatureHash for SigVersion::BASE, quirks included.

    - ``input_index`` out of range, or SIGHASH_SINGLE without a matching output, gives
      the value 1 (the historic "SIGHASH_SINGLE bug"), not an error.
    - OP_CODESEPARATORs are removed from ``script_code``; removing the signature itself
      (FindAndDelete) is the interpreter's job and is not done here.
    """
    if input_index >= len(tx.inputs):
        return ONE_HASH
    base = hash_type & 0x1F
    anyone = bool(hash_type & 0x80)
    single = base == SigHash.SINGLE
    none = base == SigHash.NONE
    if single and input_index >= len(tx.outputs):
        return ONE_HASH
    parts = [tx.version.to_bytes(4, "little", signed=True)]
    code = _without_codeseparators(script_code)
    if anyone:
        txin = tx.inputs[input_index]
        parts += (compact_size(1), txin.prevout, code, txin.sequence.to_bytes(4, "little"))
    else:
        parts.append(compact_size(len(tx.inputs)))
        for i, txin in enumerate(tx.inputs):
            parts.append(txin.prevout)
            if i == input_index:
                parts += (code, txin.sequence.to_bytes(4, "little"))
            elif single or none:
                parts.append(b"\x00\x00\x00\x00\x00")  # empty script, sequence 0
            else:
                parts += (b"\x00", txin.sequence.to_bytes(4, "little"))
    if none:
        parts.append(b"\x00")
    elif single:
        parts.append(compact_size(input_index + 1))
        parts += [SIGHASH_NULL_OUTPUT] * input_index
        parts.append(tx.outputs[input_index].serialize())
    else:
        parts.append(compact_size(len(tx.outputs)))
        parts += (o.serialize() for o in tx.outputs)
    parts.append(tx.locktime.to_bytes(4, "little"))
    parts.append((hash_type & 0xFFFFFFFF).to_bytes(4, "little"))
    return sha256d(b"".join(parts))


# -- precomputed per-transaction data ------------------------------------------------------


@dataclass(slots=True)
class PrecomputedTxData:
    """Single-SHA256 digests over all inputs/outputs (BIP341); BIP143 uses their SHA256.

    ``spent_outputs`` (the outputs each input spends, in input order) is needed only for
    taproot (amounts and scriptPubKeys are committed there).
    """

    tx: Tx
    spent_outputs: Sequence[TxOut] | None = None
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    def _get(self, key: str) -> bytes:
        h = self._cache.get(key)
        if h is None:
            h = self._cache[key] = self._compute(key)
        return h

    def _compute(self, key: str) -> bytes:
        tx = self.tx
        if key == "prevouts":
            return _sha256(b"".join(i.prevout for i in tx.inputs)).digest()
        if key == "sequences":
            return _sha256(b"".join(i.sequence.to_bytes(4, "little") for i in tx.inputs)).digest()
        if key == "outputs":
            return _sha256(b"".join(o.serialize() for o in tx.outputs)).digest()
        spent = self._spent()
        if key == "amounts":
            return _sha256(
                b"".join(o.value.to_bytes(8, "little", signed=True) for o in spent)
            ).digest()
        if key == "scriptpubkeys":
            return _sha256(
                b"".join(compact_size(len(o.script_pubkey)) + o.script_pubkey for o in spent)
            ).digest()
        raise KeyError(key)

    def _spent(self) -> Sequence[TxOut]:
        spent = self.spent_outputs
        if spent is None:
            raise SighashError("taproot signature hash needs the spent outputs of every input")
        if len(spent) != len(self.tx.inputs):
            raise SighashError(
                f"{len(self.tx.inputs)} inputs but {len(spent)} spent outputs were given"
            )
        return spent

    # BIP341 (single SHA256)
    @property
    def sha_prevouts(self) -> bytes:
        return self._get("prevouts")

    @property
    def sha_amounts(self) -> bytes:
        return self._get("amounts")

    @property
    def sha_scriptpubkeys(self) -> bytes:
        return self._get("scriptpubkeys")

    @property
    def sha_sequences(self) -> bytes:
        return self._get("sequences")

    @property
    def sha_outputs(self) -> bytes:
        return self._get("outputs")

    # BIP143 (double SHA256)
    @property
    def hash_prevouts(self) -> bytes:
        return _sha256(self.sha_prevouts).digest()

    @property
    def hash_sequence(self) -> bytes:
        return _sha256(self.sha_sequences).digest()

    @property
    def hash_outputs(self) -> bytes:
        return _sha256(self.sha_outputs).digest()


# -- BIP143 ------------------------------------------------------------------------------------


def segwit_v0_sighash(
    tx: Tx,
    input_index: int,
    script_code: bytes,
    amount: int,
    hash_type: int,
    precomputed: PrecomputedTxData | None = None,
) -> bytes:
    """BIP143 digest. ``script_code`` is the script as executed (for P2WPKH the P2PKH script
    of the key hash; for P2WSH the witness script from the last executed OP_CODESEPARATOR).
    """
    if not 0 <= input_index < len(tx.inputs):
        raise SighashError(f"input index {input_index} out of range")
    pre = precomputed if precomputed is not None else PrecomputedTxData(tx)
    base = hash_type & 0x1F
    anyone = hash_type & 0x80
    zero = b"\x00" * 32
    prevouts = zero if anyone else pre.hash_prevouts
    sequences = (
        pre.hash_sequence
        if not anyone and base != SigHash.SINGLE and base != SigHash.NONE
        else zero
    )
    if base != SigHash.SINGLE and base != SigHash.NONE:
        outputs = pre.hash_outputs
    elif base == SigHash.SINGLE and input_index < len(tx.outputs):
        outputs = sha256d(tx.outputs[input_index].serialize())
    else:
        outputs = zero
    txin = tx.inputs[input_index]
    preimage = b"".join(
        (
            tx.version.to_bytes(4, "little", signed=True),
            prevouts,
            sequences,
            txin.prevout,
            compact_size(len(script_code)),
            script_code,
            amount.to_bytes(8, "little", signed=True),
            txin.sequence.to_bytes(4, "little"),
            outputs,
            tx.locktime.to_bytes(4, "little"),
            (hash_type & 0xFFFFFFFF).to_bytes(4, "little"),
        )
    )
    return sha256d(preimage)


def p2wpkh_script_code(pubkey_hash: bytes) -> bytes:
    """The BIP143 scriptCode for a P2WPKH input: the P2PKH script of the key hash."""
    return b"\x76\xa9\x14" + pubkey_hash + b"\x88\xac"


# -- BIP341 ------------------------------------------------------------------------------------

_VALID_TAPROOT_TYPES = frozenset((0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83))


def taproot_sigmsg(
    tx: Tx,
    input_index: int,
    spent_outputs: Sequence[TxOut] | None,
    hash_type: int,
    *,
    annex: bytes | None = None,
    leaf_hash: bytes | None = None,
    codesep_pos: int = CODESEP_NONE,
    precomputed: PrecomputedTxData | None = None,
) -> bytes:
    """The BIP341 message, epoch byte 0x00 first (as the BIP's test vectors print it).

    ``leaf_hash`` given → script-path spend (ext_flag 1, BIP342 extension with key
    version 0 and ``codesep_pos``); ``annex`` includes its leading 0x50 byte.
    """
    if hash_type not in _VALID_TAPROOT_TYPES:
        raise SighashError(f"invalid taproot hash type 0x{hash_type:02x}")
    if not 0 <= input_index < len(tx.inputs):
        raise SighashError(f"input index {input_index} out of range")
    pre = precomputed if precomputed is not None else PrecomputedTxData(tx, spent_outputs)
    output_type = SigHash.ALL if hash_type == SigHash.DEFAULT else hash_type & 0x03
    anyone = hash_type & 0x80
    ext_flag = 0 if leaf_hash is None else 1
    parts = [
        b"\x00",
        bytes((hash_type,)),
        tx.version.to_bytes(4, "little", signed=True),
        tx.locktime.to_bytes(4, "little"),
    ]
    if not anyone:
        parts += (pre.sha_prevouts, pre.sha_amounts, pre.sha_scriptpubkeys, pre.sha_sequences)
    if output_type == SigHash.ALL:
        parts.append(pre.sha_outputs)
    parts.append(bytes((ext_flag * 2 + (annex is not None),)))
    if anyone:
        txin = tx.inputs[input_index]
        spent = pre._spent()[input_index]
        parts += (
            txin.prevout,
            spent.value.to_bytes(8, "little", signed=True),
            compact_size(len(spent.script_pubkey)),
            spent.script_pubkey,
            txin.sequence.to_bytes(4, "little"),
        )
    else:
        parts.append(input_index.to_bytes(4, "little"))
    if annex is not None:
        if not annex or annex[0] != 0x50:
            raise SighashError("annex must start with 0x50")
        parts.append(_sha256(compact_size(len(annex)) + annex).digest())
    if output_type == SigHash.SINGLE:
        if input_index >= len(tx.outputs):
            raise SighashError("SIGHASH_SINGLE without an output at the input's index")
        parts.append(_sha256(tx.outputs[input_index].serialize()).digest())
    if ext_flag:
        if len(leaf_hash) != 32:  # type: ignore[arg-type]
            raise SighashError("tapleaf hash must be 32 bytes")
        parts += (leaf_hash, b"\x00", codesep_pos.to_bytes(4, "little"))  # type: ignore[arg-type]
    return b"".join(parts)


def taproot_sighash(
    tx: Tx,
    input_index: int,
    spent_outputs: Sequence[TxOut] | None,
    hash_type: int = SigHash.DEFAULT,
    *,
    annex: bytes | None = None,
    leaf_hash: bytes | None = None,
    codesep_pos: int = CODESEP_NONE,
    precomputed: PrecomputedTxData | None = None,
) -> bytes:
    """BIP341 signature hash: TapSighash tagged hash of :func:`taproot_sigmsg`."""
    msg = taproot_sigmsg(
        tx,
        input_index,
        spent_outputs,
        hash_type,
        annex=annex,
        leaf_hash=leaf_hash,
        codesep_pos=codesep_pos,
        precomputed=precomputed,
    )
    return tagged_hash("TapSighash", msg)

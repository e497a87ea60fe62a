"""Block validation: context-free checks, contextual checks, connect and disconnect.

Mirrors Bitcoin Core's split so every rejection carries Core's reason string:

- :func:`check_block` (CheckBlock): merkle root and mutation, size, coinbase
  placement, CheckTransaction of each tx, legacy sigops.
- :func:`contextual_check_block` (ContextualCheckBlock): BIP113 finality, BIP34
  height in the coinbase, BIP141 witness commitment, block weight.
- :func:`connect_block` (ConnectBlock): inputs exist and are mature, amounts,
  fees, coinbase amount, BIP30, BIP68 sequence locks, sigop cost, scripts (handed
  to the script verifier with the per-height consensus flags). Returns the undo.
- :func:`disconnect_block` (DisconnectBlock): the inverse, from undo data.

The connect loop is the hot path of initial sync: it works on raw 36-byte outpoints
(which are also the UTXO keys), looks coins up in the write-back cache, and only
builds what the undo and the script checks need.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from node.chain import errors as E
from node.chain.checkqueue import ScriptSession
from node.chain.coins import Coin
from node.chain.errors import ChainError, ConsensusError
from node.chain.params import MAX_MONEY, ChainParams, ScriptFlag, block_subsidy
from node.chain.scriptcheck import script_flags
from node.chain.signet import check_signet_block
from node.chain.undo import BlockUndo
from protocols.bitcoin.block import Block
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.script import (
    count_witness_sigops,
    is_p2sh,
    p2sh_sigop_count,
)

MAX_BLOCK_WEIGHT = 4_000_000
MAX_BLOCK_SERIALIZED_SIZE = 4_000_000
MAX_BLOCK_SIGOPS_COST = 80_000
WITNESS_SCALE_FACTOR = 4
LOCKTIME_THRESHOLD = 500_000_000
SEQUENCE_FINAL = 0xFFFFFFFF
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
SEQUENCE_LOCKTIME_MASK = 0x0000FFFF
SEQUENCE_LOCKTIME_GRANULARITY = 9
WITNESS_COMMITMENT_HEADER = b"\x6a\x24\xaa\x21\xa9\xed"
BIP34_IMPLIES_BIP30_LIMIT = 1_983_702
# Mainnet blocks that repeat an earlier coinbase (allowed before BIP30): height -> hash.
BIP30_REPEATS = {
    91842: bytes.fromhex("00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec")[::-1],
    91880: bytes.fromhex("00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721")[::-1],
}

_pack_index = struct.Struct("<I").pack
_P2SH = int(ScriptFlag.P2SH)
_WITNESS = int(ScriptFlag.WITNESS)
_SIGOP_BYTES = (b"\xac", b"\xad", b"\xae", b"\xaf")


class ScriptVerifier(Protocol):
    """``node.chain.checkqueue.ScriptCheckQueue``: per-block sessions fed tx by tx."""

    def session(self, flags: int) -> ScriptSession: ...


# -- helpers ------------------------------------------------------------------------------------
def legacy_sigop_count(script: bytes) -> int:
    """Core's ``GetSigOpCount(false)`` without building op objects (the CheckBlock hot path).

    Push data is skipped by length, never sliced; a push that runs past the end stops
    the count exactly as a failing ``GetOp`` does in Core. Property-tested against
    ``protocols.bitcoin.script.sigop_count``.
    """
    for b in _SIGOP_BYTES:
        if b in script:
            break
    else:
        return 0  # no CHECKSIG/CHECKMULTISIG byte anywhere: nothing to count
    n = 0
    pos = 0
    end = len(script)
    while pos < end:
        op = script[pos]
        pos += 1
        if op <= 0x4E:
            if op < 0x4C:
                pos += op
            elif op == 0x4C:
                if pos + 1 > end:
                    break
                pos += 1 + script[pos]
            elif op == 0x4D:
                if pos + 2 > end:
                    break
                pos += 2 + (script[pos] | script[pos + 1] << 8)
            else:
                if pos + 4 > end:
                    break
                pos += 4 + int.from_bytes(script[pos : pos + 4], "little")
            if pos > end:
                break
        elif op == 0xAC or op == 0xAD:
            n += 1
        elif op == 0xAE or op == 0xAF:
            n += 20  # MAX_PUBKEYS_PER_MULTISIG: the inaccurate (legacy) count
    return n


def tx_legacy_sigops(tx: object) -> int:
    n = 0
    count = legacy_sigop_count
    for txin in tx.inputs:  # type: ignore[attr-defined]
        if txin.script_sig:
            n += count(txin.script_sig)
    for out in tx.outputs:  # type: ignore[attr-defined]
        n += count(out.script_pubkey)
    return n


def is_final_tx(tx: object, height: int, cutoff_time: int) -> bool:
    """Core's IsFinalTx."""
    locktime = tx.locktime  # type: ignore[attr-defined]
    if locktime == 0:
        return True
    if locktime < (height if locktime < LOCKTIME_THRESHOLD else cutoff_time):
        return True
    return all(txin.sequence == SEQUENCE_FINAL for txin in tx.inputs)  # type: ignore[attr-defined]


def witness_commitment_index(block: Block) -> int:
    """Index of the last coinbase output carrying a witness commitment, or -1."""
    outputs = block.txs[0].outputs if block.txs else []
    for i in range(len(outputs) - 1, -1, -1):
        s = outputs[i].script_pubkey
        if len(s) >= 38 and s[:6] == WITNESS_COMMITMENT_HEADER:
            return i
    return -1


def witness_merkle_root(block: Block) -> bytes:
    hashes = [b"\x00" * 32] + [tx.wtxid for tx in block.txs[1:]]
    return merkle_root(hashes)[0]


def bip34_height_push(height: int) -> bytes:
    """``CScript() << height`` as Core serializes it for the coinbase (BIP34)."""
    if height == 0:
        return b"\x00"
    if 1 <= height <= 16:
        return bytes((0x50 + height,))
    data = bytearray()
    n = height
    while n:
        data.append(n & 0xFF)
        n >>= 8
    if data[-1] & 0x80:
        data.append(0)
    return bytes((len(data),)) + bytes(data)


# -- context-free -------------------------------------------------------------------------------
@dataclass(slots=True)
class CheckedBlock:
    """What check_block learned and connect_block reuses (no second pass)."""

    block: Block
    legacy_sigops: list[int]


def check_block_header_pow(block: Block, params: ChainParams) -> None:
    decoded = bits_to_target(block.header.bits)
    if (
        decoded.negative
        or decoded.overflow
        or decoded.target == 0
        or decoded.target > params.pow_limit
        or int.from_bytes(block.hash, "little") > decoded.target
    ):
        raise ConsensusError(E.HIGH_HASH, "proof of work failed")


def check_block(
    block: Block,
    params: ChainParams,
    check_tx: Callable[[object], None],
    *,
    check_pow: bool = True,
) -> CheckedBlock:
    """Core's CheckBlock. ``check_tx`` is CheckTransaction (raises ConsensusError)."""
    if check_pow:
        check_block_header_pow(block, params)
    txs = block.txs
    root, mutated = merkle_root([tx.txid for tx in txs])
    if root != block.header.merkle_root:
        raise ConsensusError(E.BAD_TXNMRKLROOT, "hashMerkleRoot mismatch")
    if mutated:
        raise ConsensusError(E.BAD_TXNS_DUPLICATE, "duplicate transaction")
    if (
        not txs
        or len(txs) * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT
        or block.base_size * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT
    ):
        raise ConsensusError(E.BAD_BLK_LENGTH, "size limits failed")
    if not txs[0].is_coinbase():
        raise ConsensusError(E.BAD_CB_MISSING, "first tx is not coinbase")
    if params.signet_challenge is not None:
        check_signet_block(block, params)  # BIP325, where Core checks it: CheckBlock
    for tx in txs[1:]:
        if tx.is_coinbase():
            raise ConsensusError(E.BAD_CB_MULTIPLE, "more than one coinbase")
    for tx in txs:
        check_tx(tx)
    sigops = [tx_legacy_sigops(tx) for tx in txs]
    if sum(sigops) * WITNESS_SCALE_FACTOR > MAX_BLOCK_SIGOPS_COST:
        raise ConsensusError(E.BAD_BLK_SIGOPS, "out-of-bounds SigOpCount")
    return CheckedBlock(block, sigops)


# -- contextual ---------------------------------------------------------------------------------
def check_witness_malleation(block: Block, expect_commitment: bool) -> None:
    """Core's CheckWitnessMalleation (BIP141)."""
    if expect_commitment:
        idx = witness_commitment_index(block)
        if idx >= 0:
            witness = block.txs[0].inputs[0].witness
            if len(witness) != 1 or len(witness[0]) != 32:
                raise ConsensusError(
                    E.BAD_WITNESS_NONCE_SIZE, "invalid witness reserved value size"
                )
            commitment = sha256d(witness_merkle_root(block) + witness[0])
            if commitment != block.txs[0].outputs[idx].script_pubkey[6:38]:
                raise ConsensusError(
                    E.BAD_WITNESS_MERKLE_MATCH, "witness merkle commitment mismatch"
                )
            return
    for tx in block.txs:
        for txin in tx.inputs:
            if txin.witness:
                raise ConsensusError(E.UNEXPECTED_WITNESS, "unexpected witness data found")


def contextual_check_block(block: Block, params: ChainParams, height: int, prev_mtp: int) -> None:
    """Core's ContextualCheckBlock (``prev_mtp``: median time past of the parent)."""
    cutoff = prev_mtp if height >= params.csv_height else block.header.time
    for tx in block.txs:
        if not is_final_tx(tx, height, cutoff):
            raise ConsensusError(E.BAD_TXNS_NONFINAL, "non-final transaction")
    if height >= params.bip34_height:
        expect = bip34_height_push(height)
        if not block.txs[0].inputs[0].script_sig.startswith(expect):
            raise ConsensusError(E.BAD_CB_HEIGHT, "block height mismatch in coinbase")
    check_witness_malleation(block, height >= params.segwit_height)
    if block.weight > MAX_BLOCK_WEIGHT:
        raise ConsensusError(E.BAD_BLK_WEIGHT, "weight limit failed")


# -- connect / disconnect -----------------------------------------------------------------------
@dataclass(slots=True)
class ConnectContext:
    """Chain facts connect_block needs about the block's position."""

    height: int
    block_hash: bytes
    prev_mtp: int  # BIP68 block time: the parent's median time past
    ancestor_mtp: Callable[[int], int]  # MTP of this block's ancestor at a height
    enforce_bip30: bool


@dataclass(slots=True)
class ConnectStats:
    txs: int = 0
    inputs: int = 0
    fees: int = 0


def enforce_bip30(
    params: ChainParams,
    height: int,
    block_hash: bytes,
    ancestor_hash: Callable[[int], bytes | None],
) -> bool:
    """Core's rule: BIP30 applies except to the two historic repeats, and is implied by
    BIP34 on the chain that contains the BIP34 activation block (until the height where
    an old coinbase could first repeat a BIP34 one)."""
    if BIP30_REPEATS.get(height) == block_hash and params.name == "mainnet":
        return False
    if (
        params.bip34_hash is not None
        and height >= params.bip34_height
        and ancestor_hash(params.bip34_height) == params.bip34_hash
    ):
        return height >= BIP34_IMPLIES_BIP30_LIMIT
    return True


def _sequence_locks_ok(tx: object, prev_heights: list[int], ctx: ConnectContext) -> bool:
    """BIP68 (Core's CalculateSequenceLocks + EvaluateSequenceLocks)."""
    min_height = -1
    min_time = -1
    ancestor_mtp = ctx.ancestor_mtp
    for txin, coin_height in zip(tx.inputs, prev_heights, strict=True):  # type: ignore[attr-defined]
        seq = txin.sequence
        if seq & SEQUENCE_LOCKTIME_DISABLE_FLAG:
            continue
        if seq & SEQUENCE_LOCKTIME_TYPE_FLAG:
            coin_time = ancestor_mtp(max(coin_height - 1, 0))
            t = coin_time + ((seq & SEQUENCE_LOCKTIME_MASK) << SEQUENCE_LOCKTIME_GRANULARITY) - 1
            if t > min_time:
                min_time = t
        else:
            h = coin_height + (seq & SEQUENCE_LOCKTIME_MASK) - 1
            if h > min_height:
                min_height = h
    return not (min_height >= ctx.height or min_time >= ctx.prev_mtp)


def _extra_sigop_cost(tx: object, spent: list[Coin], flags: int) -> int:
    """P2SH and witness sigop cost of a transaction's inputs (legacy counted already)."""
    cost = 0
    p2sh = flags & _P2SH
    for txin, coin in zip(tx.inputs, spent, strict=True):  # type: ignore[attr-defined]
        s = coin.script
        n = len(s)
        if n == 22 and s[0] == 0 and s[1] == 20:  # P2WPKH
            cost += 1 if flags & _WITNESS else 0
            continue
        if (n == 34 and s[0] == 0x51 and s[1] == 32) or (n == 25 and s[0] == 0x76):
            continue  # P2TR / P2PKH: no P2SH or witness sigops
        if p2sh and is_p2sh(s):
            cost += p2sh_sigop_count(s, txin.script_sig) * WITNESS_SCALE_FACTOR
        cost += count_witness_sigops(txin.script_sig, s, txin.witness, flags)
    return cost


def connect_block(
    checked: CheckedBlock,
    ctx: ConnectContext,
    view: object,
    params: ChainParams,
    verifier: ScriptVerifier | None,
) -> tuple[BlockUndo, ConnectStats]:
    """Apply a checked block to ``view``; returns its undo data.

    On ConsensusError ``view`` holds partial changes: the caller discards it (the
    chainstate connects into a ``BlockView`` layer and applies it only on success).
    Script checks run on the verifier's threads while the loop goes on.
    """
    txs = checked.block.txs
    flags = script_flags(ctx.height, params, ctx.block_hash)
    if ctx.enforce_bip30:
        have = view.have  # type: ignore[attr-defined]
        for tx in txs:
            txid = tx.txid
            for i in range(len(tx.outputs)):
                if have(txid + _pack_index(i)):
                    raise ConsensusError(E.BAD_TXNS_BIP30, "tried to overwrite transaction")
    view.prefetch([txin.prevout for tx in txs[1:] for txin in tx.inputs])  # type: ignore[attr-defined]
    session = verifier.session(flags) if verifier is not None else None
    try:
        undo_txs, fees, n_inputs = _connect_txs(checked, ctx, view, params, session, flags)
        reward = fees + block_subsidy(ctx.height, params)
        cb_out = sum(out.value for out in txs[0].outputs)
        if cb_out > reward:
            raise ConsensusError(
                E.BAD_CB_AMOUNT, f"coinbase pays too much (actual={cb_out} vs limit={reward})"
            )
        failure = session.finish() if session is not None else None
    except BaseException:
        if session is not None:
            session.cancel()
        raise
    if failure is not None:
        raise ConsensusError(
            E.script_verify_failed(failure.detail()),
            f"script verification failed: {failure.detail()}",
        )
    return BlockUndo(undo_txs), ConnectStats(len(txs), n_inputs, fees)


def _connect_txs(
    checked: CheckedBlock,
    ctx: ConnectContext,
    view: object,
    params: ChainParams,
    session: ScriptSession | None,
    flags: int,
) -> tuple[list[list[Coin]], int, int]:
    """The per-transaction loop: inputs, amounts, locks, sigops, new outputs."""
    txs = checked.block.txs
    height = ctx.height
    maturity = params.coinbase_maturity
    bip68 = height >= params.csv_height
    spend = view.spend  # type: ignore[attr-defined]
    add = view.add  # type: ignore[attr-defined]
    check = session.add if session is not None else None
    legacy = checked.legacy_sigops
    new_coin = Coin
    undo_txs: list[list[Coin]] = []
    sigop_cost = 0
    fees = 0
    n_inputs = 0
    for index, tx in enumerate(txs):
        inputs = tx.inputs
        sigop_cost += legacy[index] * WITNESS_SCALE_FACTOR
        if index:
            n_inputs += len(inputs)
            spent: list[Coin] = []
            value_in = 0
            immature = False
            for txin in inputs:
                coin = spend(txin.prevout)
                if coin is None:
                    raise ConsensusError(
                        E.BAD_TXNS_INPUTS_MISSINGORSPENT,
                        f"tx {tx.txid_hex} input {len(spent)} missing or spent",
                    )
                if coin.coinbase and height - coin.height < maturity:
                    immature = True
                value_in += coin.amount
                spent.append(coin)
            if immature:
                raise ConsensusError(
                    E.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE,
                    f"tx {tx.txid_hex} spends an immature coinbase",
                )
            if value_in > MAX_MONEY or any(c.amount > MAX_MONEY for c in spent):
                raise ConsensusError(E.BAD_TXNS_INPUTVALUES_OUTOFRANGE)
            value_out = 0
            for out in tx.outputs:
                value_out += out.value
            if value_in < value_out:
                raise ConsensusError(
                    E.BAD_TXNS_IN_BELOWOUT, f"value in {value_in} < value out {value_out}"
                )
            fee = value_in - value_out
            if fee > MAX_MONEY:
                raise ConsensusError(E.BAD_TXNS_FEE_OUTOFRANGE)
            fees += fee
            if fees > MAX_MONEY:
                raise ConsensusError(E.BAD_TXNS_ACCUMULATED_FEE_OUTOFRANGE)
            if (
                bip68
                and tx.version >= 2
                and not _sequence_locks_ok(tx, [c.height for c in spent], ctx)
            ):
                raise ConsensusError(E.BAD_TXNS_NONFINAL, "contains a non-BIP68-final transaction")
            sigop_cost += _extra_sigop_cost(tx, spent, flags)
            undo_txs.append(spent)
            if check is not None:
                check(index, tx.serialize(), [(c.amount, c.script) for c in spent])
        if sigop_cost > MAX_BLOCK_SIGOPS_COST:
            raise ConsensusError(E.BAD_BLK_SIGOPS, "too many sigops")
        txid = tx.txid
        coinbase = index == 0
        for i, out in enumerate(tx.outputs):
            s = out.script_pubkey
            if (s and s[0] == 0x6A) or len(s) > 10_000:
                continue  # provably unspendable: never enters the UTXO set
            add(txid + _pack_index(i), new_coin(height, coinbase, out.value, s), coinbase)
    return undo_txs, fees, n_inputs


class DisconnectError(ChainError):
    """Undo data does not match the UTXO set (corruption): the chainstate stops."""


def disconnect_block(block: Block, undo: BlockUndo, view: object) -> None:
    """Core's DisconnectBlock: remove the block's outputs, restore what it spent."""
    txs: Sequence = block.txs
    if len(undo.txs) + 1 != len(txs):
        raise DisconnectError("undo data does not match the block's transaction count")
    spend = view.spend  # type: ignore[attr-defined]
    add = view.add  # type: ignore[attr-defined]
    have = view.have  # type: ignore[attr-defined]
    for index in range(len(txs) - 1, -1, -1):
        tx = txs[index]
        txid = tx.txid
        for i, out in enumerate(tx.outputs):
            s = out.script_pubkey
            if (s and s[0] == 0x6A) or len(s) > 10_000:
                continue
            coin = spend(txid + _pack_index(i))
            if coin is None or coin.amount != out.value or coin.script != s:
                raise DisconnectError(f"output {i} of {tx.txid_hex} missing or changed")
        if index:
            spent = undo.txs[index - 1]
            if len(spent) != len(tx.inputs):
                raise DisconnectError("undo data does not match the transaction's inputs")
            for j in range(len(spent) - 1, -1, -1):
                op = tx.inputs[j].prevout
                if have(op):
                    raise DisconnectError("restoring a coin that is unspent")
                add(op, spent[j], False)

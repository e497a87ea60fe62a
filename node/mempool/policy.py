"""Standardness policy (Bitcoin Core's policy/policy.cpp): what we relay and mine, beyond
consensus.

Every check raises ``Rejected`` with Core's reason. Constants are Core's defaults (v30:
any number of OP_RETURN outputs up to 100,000 bytes in total). Differences from Core,
on purpose: transaction version 3 (TRUC) is not standard here because the TRUC topology
rules are not implemented, and a dust output is always refused (Core allows one in a
zero-fee transaction only when it is spent in the same package; we have no packages).
"""

from __future__ import annotations

from collections.abc import Sequence

from node.mempool import errors as R
from node.mempool.errors import Rejected
from protocols.bitcoin.compact import compact_size
from protocols.bitcoin.script import (
    ScriptError,
    ScriptType,
    classify,
    is_p2sh,
    is_push_only,
    script_ops,
    sigop_count,
    witness_program,
)
from protocols.bitcoin.tx import Tx, TxOut

MAX_STANDARD_TX_WEIGHT = 400_000
MIN_STANDARD_TX_NONWITNESS_SIZE = 65
MAX_STANDARD_TX_SIGOPS_COST = 16_000
MAX_STANDARD_SCRIPTSIG_SIZE = 1_650
MAX_P2SH_SIGOPS = 15
MAX_STANDARD_P2WSH_SCRIPT_SIZE = 3_600
MAX_STANDARD_P2WSH_STACK_ITEMS = 100
MAX_STANDARD_P2WSH_STACK_ITEM_SIZE = 80
MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE = 80
MAX_DATACARRIER_BYTES = MAX_STANDARD_TX_WEIGHT // 4
TX_MIN_STANDARD_VERSION = 1
TX_MAX_STANDARD_VERSION = 2  # 3 (TRUC) needs topology rules we do not implement
DUST_RELAY_FEERATE = 3_000  # sat/kvB
DEFAULT_BYTES_PER_SIGOP = 20
ANNEX_TAG = 0x50
TAPROOT_LEAF_MASK = 0xFE
TAPROOT_LEAF_TAPSCRIPT = 0xC0


def fee_at(rate_per_kvb: int | float, vsize: int) -> int:
    """Fee of ``vsize`` vbytes at ``rate_per_kvb`` sat/kvB, rounded up (Core's CFeeRate::GetFee)."""
    return -(-int(rate_per_kvb * vsize) // 1000) if rate_per_kvb > 0 else 0


def adjusted_vsize(
    weight: int, sigop_cost: int, bytes_per_sigop: int = DEFAULT_BYTES_PER_SIGOP
) -> int:
    """Core's sigop-adjusted virtual size: the size every mempool limit and fee rate uses."""
    return (max(weight, sigop_cost * bytes_per_sigop) + 3) // 4


def dust_threshold(out: TxOut, dust_feerate: int = DUST_RELAY_FEERATE) -> int:
    """Core's GetDustThreshold: the fee to spend this output at the dust relay fee rate."""
    script = out.script_pubkey
    if (script and script[0] == 0x6A) or len(script) > 10_000:
        return 0
    size = 8 + len(compact_size(len(script))) + len(script)
    # Spending input: outpoint 36 + script length 1 + sequence 4, plus a typical signature.
    size += 32 + 4 + 1 + (107 // 4) + 4 if witness_program(script) else 32 + 4 + 1 + 107 + 4
    return fee_at(dust_feerate, size)


def is_dust(out: TxOut, dust_feerate: int = DUST_RELAY_FEERATE) -> bool:
    return out.value < dust_threshold(out, dust_feerate)


def _standard_output(script: bytes) -> ScriptType | None:
    """The template type when ``script`` is a standard output script (Core's ::IsStandard)."""
    kind, solutions = classify(script)
    if kind is ScriptType.NONSTANDARD:
        return None
    if kind is ScriptType.MULTISIG:
        m, n = solutions[0][0], solutions[-1][0]
        if n < 1 or n > 3 or m < 1 or m > n:
            return None
    return kind


def check_standard_tx(
    tx: Tx,
    *,
    permit_bare_multisig: bool = True,
    max_datacarrier_bytes: int = MAX_DATACARRIER_BYTES,
    dust_feerate: int = DUST_RELAY_FEERATE,
) -> None:
    """Core's IsStandardTx plus the tx-size-small rule of PreChecks."""
    if not TX_MIN_STANDARD_VERSION <= tx.version <= TX_MAX_STANDARD_VERSION:
        raise Rejected(R.VERSION, f"version {tx.version}")
    if tx.weight > MAX_STANDARD_TX_WEIGHT:
        raise Rejected(R.TX_SIZE, f"weight {tx.weight} > {MAX_STANDARD_TX_WEIGHT}")
    for txin in tx.inputs:
        if len(txin.script_sig) > MAX_STANDARD_SCRIPTSIG_SIZE:
            raise Rejected(R.SCRIPTSIG_SIZE)
        if txin.script_sig and not is_push_only(txin.script_sig):
            raise Rejected(R.SCRIPTSIG_NOT_PUSHONLY)
    data_left = max_datacarrier_bytes
    for n, out in enumerate(tx.outputs):
        kind = _standard_output(out.script_pubkey)
        if kind is None:
            raise Rejected(R.SCRIPTPUBKEY, f"output {n} has a nonstandard script")
        if kind is ScriptType.NULL_DATA:
            data_left -= len(out.script_pubkey)
            if data_left < 0:
                raise Rejected(R.DATACARRIER, f"more than {max_datacarrier_bytes} OP_RETURN bytes")
        elif kind is ScriptType.MULTISIG and not permit_bare_multisig:
            raise Rejected(R.BARE_MULTISIG)
    for n, out in enumerate(tx.outputs):
        if is_dust(out, dust_feerate):
            raise Rejected(
                R.DUST, f"output {n} value {out.value} < {dust_threshold(out, dust_feerate)}"
            )
    if tx.base_size < MIN_STANDARD_TX_NONWITNESS_SIZE:
        raise Rejected(R.TX_SIZE_SMALL, f"{tx.base_size} non-witness bytes")


def _pushed_stack(script_sig: bytes) -> list[bytes]:
    """The stack a push-only scriptSig leaves (SCRIPT_VERIFY_NONE evaluation)."""
    stack: list[bytes] = []
    for op, data in script_ops(script_sig):
        if data is not None:
            stack.append(data)
        elif op == 0:
            stack.append(b"")
        elif op == 0x4F:
            stack.append(b"\x81")
        elif 0x51 <= op <= 0x60:
            stack.append(bytes((op - 0x50,)))
        else:
            raise ScriptError("not push only")
    return stack


def check_inputs_standard(tx: Tx, spent_scripts: Sequence[bytes]) -> None:
    """Core's AreInputsStandard: known templates only; P2SH redeem scripts with <= 15 sigops."""
    for i, (txin, script) in enumerate(zip(tx.inputs, spent_scripts, strict=True)):
        kind = classify(script)[0]
        if kind in (ScriptType.NONSTANDARD, ScriptType.WITNESS_UNKNOWN):
            raise Rejected(R.NONSTANDARD_INPUTS, f"input {i}: spends a {kind} output")
        if kind is ScriptType.SCRIPTHASH:
            try:
                stack = _pushed_stack(txin.script_sig)
            except ScriptError:
                stack = []
            if not stack:
                raise Rejected(R.NONSTANDARD_INPUTS, f"input {i}: P2SH without redeem script")
            if sigop_count(stack[-1], True) > MAX_P2SH_SIGOPS:
                raise Rejected(R.NONSTANDARD_INPUTS, f"input {i}: p2sh redeem script sigops")


def check_witness_standard(tx: Tx, spent_scripts: Sequence[bytes]) -> None:
    """Core's IsWitnessStandard: witness stacks within the P2WSH/tapscript size limits."""
    for i, (txin, script) in enumerate(zip(tx.inputs, spent_scripts, strict=True)):
        witness = txin.witness
        if not witness:
            continue
        prev = script
        p2sh = False
        if len(prev) == 4 and prev[0] == 0x51 and prev[1] == 2 and prev[2:] == b"\x4e\x73":
            raise Rejected(R.WITNESS_NONSTANDARD, f"input {i}: witness spending an anchor")
        if is_p2sh(prev):
            try:
                stack = _pushed_stack(txin.script_sig)
            except ScriptError:
                stack = []
            if not stack:
                raise Rejected(R.WITNESS_NONSTANDARD, f"input {i}: empty P2SH scriptSig")
            prev = stack[-1]
            p2sh = True
        wp = witness_program(prev)
        if wp is None:
            raise Rejected(R.WITNESS_NONSTANDARD, f"input {i}: witness on a non-witness input")
        version, program = wp
        if version == 0 and len(program) == 32:
            if len(witness[-1]) > MAX_STANDARD_P2WSH_SCRIPT_SIZE:
                raise Rejected(R.WITNESS_NONSTANDARD, f"input {i}: witness script size")
            if len(witness) - 1 > MAX_STANDARD_P2WSH_STACK_ITEMS:
                raise Rejected(R.WITNESS_NONSTANDARD, f"input {i}: witness stack items")
            if any(len(item) > MAX_STANDARD_P2WSH_STACK_ITEM_SIZE for item in witness[:-1]):
                raise Rejected(R.WITNESS_NONSTANDARD, f"input {i}: witness item size")
        if version == 1 and len(program) == 32 and not p2sh:
            stack = list(witness)
            if len(stack) >= 2 and stack[-1] and stack[-1][0] == ANNEX_TAG:
                raise Rejected(R.WITNESS_NONSTANDARD, f"input {i}: taproot annex")
            control = stack[-1] if len(stack) >= 2 else b""
            tapscript = bool(control) and control[0] & TAPROOT_LEAF_MASK == TAPROOT_LEAF_TAPSCRIPT
            if tapscript and any(
                len(x) > MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE for x in stack[:-2]
            ):
                raise Rejected(R.WITNESS_NONSTANDARD, f"input {i}: tapscript item size")

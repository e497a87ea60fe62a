"""BIP325 signet block solutions: every signet block must satisfy the network's challenge.

The solution rides in the coinbase's witness-commitment output as a push that
starts with ``SIGNET_HEADER``. It signs a virtual transaction pair built from the
block with that solution stripped out, so the signer commits to everything but
its own signature. Script evaluation goes through Bitcoin Core's engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.chain.errors import ConsensusError
from node.chain.params import ChainParams, ScriptFlag
from node.chain.scriptcheck import verify_input
from protocols.bitcoin.block import Block
from protocols.bitcoin.compact import read_compact_size
from protocols.bitcoin.errors import DecodeError
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.script import ScriptError, iter_script, push_data
from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint

SIGNET_HEADER = bytes.fromhex("ecc7daa2")
BAD_SIGNET_BLKSIG = "bad-signet-blksig"
WITNESS_COMMITMENT_PREFIX = bytes.fromhex("6a24aa21a9ed")
# Core's signet BLOCK_SCRIPT_VERIFY_FLAGS.
SIGNET_FLAGS = int(ScriptFlag.P2SH | ScriptFlag.WITNESS | ScriptFlag.DERSIG | ScriptFlag.NULLDUMMY)
_NULL_PREVOUT = b"\x00" * 32 + b"\xff\xff\xff\xff"


@dataclass(frozen=True, slots=True)
class SignetTxs:
    to_spend: Tx
    to_sign: Tx


def witness_commitment_index(block: Block) -> int | None:
    """Index of the last coinbase output carrying a witness commitment (BIP141)."""
    found = None
    for i, out in enumerate(block.txs[0].outputs):
        if len(out.script_pubkey) >= 38 and out.script_pubkey.startswith(WITNESS_COMMITMENT_PREFIX):
            found = i
    return found


def split_commitment(script: bytes) -> tuple[bytes, bytes | None]:
    """(script with the solution removed, solution) — Core's FetchAndClearCommitmentSection.

    The header push stays, shortened to the bare header, and every push is
    re-encoded minimally, exactly as Core rebuilds the script.
    """
    out = bytearray()
    solution = None
    for op in iter_script(script):
        data = op.data
        if data:
            if (
                solution is None
                and len(data) > len(SIGNET_HEADER)
                and data.startswith(SIGNET_HEADER)
            ):
                solution = data[len(SIGNET_HEADER) :]
                data = SIGNET_HEADER
            out += push_data(data, minimal=False)
        else:
            out.append(op.opcode)
    return (bytes(out), solution) if solution is not None else (script, None)


def _parse_solution(solution: bytes) -> tuple[bytes, list[bytes]]:
    script_len, pos = read_compact_size(solution, 0)
    script_sig = solution[pos : pos + script_len]
    pos += script_len
    if len(script_sig) != script_len:
        raise DecodeError("truncated scriptSig")
    count, pos = read_compact_size(solution, pos)
    stack = []
    for _ in range(count):
        n, pos = read_compact_size(solution, pos)
        item = solution[pos : pos + n]
        if len(item) != n:
            raise DecodeError("truncated witness item")
        stack.append(item)
        pos += n
    if pos != len(solution):
        raise DecodeError("extraneous data")
    return script_sig, stack


def signet_txs(block: Block, challenge: bytes) -> SignetTxs:
    """The (to_spend, to_sign) pair of BIP325; raises ConsensusError when the block has none."""
    if not block.txs:
        raise ConsensusError(BAD_SIGNET_BLKSIG, "block has no coinbase")
    index = witness_commitment_index(block)
    if index is None:
        raise ConsensusError(BAD_SIGNET_BLKSIG, "block lacks a witness commitment")
    coinbase = block.txs[0]
    try:
        stripped, solution = split_commitment(coinbase.outputs[index].script_pubkey)
        script_sig, witness = _parse_solution(solution) if solution is not None else (b"", [])
    except (ScriptError, DecodeError) as exc:
        raise ConsensusError(BAD_SIGNET_BLKSIG, f"unreadable signet solution: {exc}") from None
    outputs = list(coinbase.outputs)
    outputs[index] = TxOut(outputs[index].value, stripped)
    modified = Tx(coinbase.version, coinbase.inputs, outputs, coinbase.locktime)
    signet_root, _ = merkle_root([modified.txid] + [tx.txid for tx in block.txs[1:]])
    h = block.header
    block_data = (
        h.version.to_bytes(4, "little", signed=True)
        + h.prev_hash
        + signet_root
        + h.time.to_bytes(4, "little")
    )
    script_sig_to_spend = b"\x00" + push_data(block_data, minimal=False)
    to_spend = Tx(0, [TxIn(_NULL_PREVOUT, script_sig_to_spend, 0)], [TxOut(0, challenge)], 0)
    to_sign = Tx(
        0, [TxIn(outpoint(to_spend.txid, 0), script_sig, 0, witness)], [TxOut(0, b"\x6a")], 0
    )
    return SignetTxs(to_spend, to_sign)


def check_signet_block(block: Block, params: ChainParams) -> None:
    """Raise ``bad-signet-blksig`` unless ``block`` satisfies the signet challenge."""
    challenge = params.signet_challenge
    if challenge is None or block.hash == params.genesis_hash:
        return
    txs = signet_txs(block, challenge)
    if not verify_input(txs.to_sign.serialize(), 0, [TxOut(0, challenge)], SIGNET_FLAGS):
        raise ConsensusError(BAD_SIGNET_BLKSIG, "signet block signature validation failure")

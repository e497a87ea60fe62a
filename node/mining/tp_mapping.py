"""Block templates as Template Distribution messages, and solutions back into blocks.

Pure functions, no I/O: the template provider (``node.mining.template_provider``) and the
tests share them. The split follows the spec: the TP owns everything but the coinbase
input's script after the BIP34 height push (where the client puts its extranonce and
signature) and the client's own payout outputs, which come before ours.
"""

from __future__ import annotations

from node.mining.assembler import WITNESS_COMMITMENT_HEADER, WITNESS_RESERVED_VALUE
from node.mining.template import DEFAULT_RESERVED_SIGOPS, DEFAULT_RESERVED_WEIGHT, BlockTemplate
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.merkle import merkle_branch, merkle_root
from protocols.bitcoin.script import push_int
from protocols.bitcoin.tx import Tx, TxOut
from protocols.sv2.messages import NewTemplate, SubmitSolution, TemplateSetNewPrevHash

__all__ = [
    "COINBASE_INPUT_SEQUENCE",
    "COINBASE_LOCKTIME",
    "COINBASE_TX_VERSION",
    "SolutionError",
    "block_from_solution",
    "coinbase_merkle_path",
    "coinbase_outputs",
    "coinbase_prefix",
    "new_template_message",
    "reserved_for",
    "set_new_prev_hash_message",
]

COINBASE_TX_VERSION = 2
COINBASE_INPUT_SEQUENCE = 0xFFFFFFFF
COINBASE_LOCKTIME = 0
_COMMITMENT_PREFIX = b"\x6a\x24" + WITNESS_COMMITMENT_HEADER


class SolutionError(ValueError):
    """A SubmitSolution that cannot become a block (bad coinbase bytes)."""


def reserved_for(max_additional_size: int, max_additional_sigops: int) -> tuple[int, int]:
    """Template builder reserves (weight, sigop cost) for a client's CoinbaseOutputConstraints.

    The client's extra coinbase bytes are non-witness data (4 weight units each) on top of
    the coinbase space every template keeps; its sigops count 4x in sigop cost, as in a
    legacy output script.
    """
    return (
        DEFAULT_RESERVED_WEIGHT + 4 * max_additional_size,
        DEFAULT_RESERVED_SIGOPS + 4 * max_additional_sigops,
    )


def coinbase_prefix(height: int) -> bytes:
    """The start of the coinbase scriptSig: the BIP34 height push (at most 8 bytes)."""
    return push_int(height)


def coinbase_outputs(template: BlockTemplate) -> list[TxOut]:
    """Outputs the client must add to its coinbase: the BIP141 commitment when there is one."""
    if template.default_witness_commitment is None:
        return []
    return [TxOut(0, template.default_witness_commitment)]


def coinbase_merkle_path(template: BlockTemplate) -> tuple[bytes, ...]:
    """Sibling hashes from the coinbase (leaf 0) to the root; independent of the coinbase."""
    txids = [t.txid for t in template.transactions]
    if not txids:
        return ()
    return tuple(merkle_branch([b"\x00" * 32, *txids], 0))


def new_template_message(template: BlockTemplate, template_id: int, future: bool) -> NewTemplate:
    outputs = coinbase_outputs(template)
    return NewTemplate(
        template_id=template_id,
        future_template=future,
        version=template.version,
        coinbase_tx_version=COINBASE_TX_VERSION,
        coinbase_prefix=coinbase_prefix(template.height),
        coinbase_tx_input_sequence=COINBASE_INPUT_SEQUENCE,
        coinbase_tx_value_remaining=template.coinbasevalue,
        coinbase_tx_outputs_count=len(outputs),
        coinbase_tx_outputs=b"".join(o.serialize() for o in outputs),
        coinbase_tx_locktime=COINBASE_LOCKTIME,
        merkle_path=coinbase_merkle_path(template),
    )


def set_new_prev_hash_message(template: BlockTemplate, template_id: int) -> TemplateSetNewPrevHash:
    return TemplateSetNewPrevHash(
        template_id=template_id,
        prev_hash=template.previousblockhash,
        header_timestamp=template.curtime,
        n_bits=template.bits,
        target=template.target.to_bytes(32, "little"),
    )


def block_from_solution(template: BlockTemplate, solution: SubmitSolution) -> Block:
    """The full block: the solution's coinbase and header fields, the template's transactions.

    A client that dropped the coinbase witness gets the BIP141 reserved value put back
    when its coinbase carries a commitment (Core's submitblock does the same).
    """
    try:
        coinbase = Tx.from_bytes(solution.coinbase_tx)
    except BitcoinProtocolError as exc:
        raise SolutionError(f"coinbase does not decode: {exc}") from None
    if not coinbase.is_coinbase():
        raise SolutionError("coinbase_tx is not a coinbase transaction")
    committed = any(o.script_pubkey.startswith(_COMMITMENT_PREFIX) for o in coinbase.outputs)
    if committed and not coinbase.inputs[0].witness:
        coinbase.inputs[0].witness = [WITNESS_RESERVED_VALUE]
        coinbase.invalidate()
    txs = [coinbase, *(t.tx for t in template.transactions)]
    root, _ = merkle_root([tx.txid for tx in txs])
    header = BlockHeader(
        solution.version,
        template.previousblockhash,
        root,
        solution.header_timestamp,
        template.bits,
        solution.header_nonce,
    )
    return Block(header, txs)

"""Context-free transaction checks (Bitcoin Core's CheckTransaction).

``check_transaction(tx)`` raises ``ConsensusError`` with Core's reason for the first broken
rule, in Core's order; block validation calls it for every transaction, so it stays cheap:
one pass over outputs, a set over 36-byte outpoints.
"""

from __future__ import annotations

from node.chain import errors as E
from node.chain.errors import ConsensusError
from node.chain.params import MAX_MONEY
from protocols.bitcoin.tx import NULL_OUTPOINT, WITNESS_SCALE_FACTOR, Tx

MAX_BLOCK_WEIGHT = 4_000_000


def check_transaction(tx: Tx) -> None:
    """Raise ConsensusError unless ``tx`` passes every context-free consensus rule."""
    inputs = tx.inputs
    outputs = tx.outputs
    if not inputs:
        raise ConsensusError(E.BAD_TXNS_VIN_EMPTY)
    if not outputs:
        raise ConsensusError(E.BAD_TXNS_VOUT_EMPTY)
    if tx.base_size * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT:
        raise ConsensusError(E.BAD_TXNS_OVERSIZE, "size limits failed")
    total = 0
    for out in outputs:
        value = out.value
        if value < 0:
            raise ConsensusError(E.BAD_TXNS_VOUT_NEGATIVE)
        if value > MAX_MONEY:
            raise ConsensusError(E.BAD_TXNS_VOUT_TOOLARGE)
        total += value
        if total > MAX_MONEY:
            raise ConsensusError(E.BAD_TXNS_TXOUTTOTAL_TOOLARGE)
    if len(inputs) > 1 and len({txin.prevout for txin in inputs}) != len(inputs):
        raise ConsensusError(E.BAD_TXNS_INPUTS_DUPLICATE)
    if len(inputs) == 1 and inputs[0].prevout == NULL_OUTPOINT:
        n = len(inputs[0].script_sig)
        if n < 2 or n > 100:
            raise ConsensusError(E.BAD_CB_LENGTH)
    else:
        for txin in inputs:
            if txin.prevout == NULL_OUTPOINT:
                raise ConsensusError(E.BAD_TXNS_PREVOUT_NULL)

"""Template-provider test helpers: what a TD client does with a NewTemplate, and a client.

``client_coinbase`` builds the coinbase the way an SV2 pool / JD client does (BIP34 prefix
from the template, then its extranonce; its payout output first, the template's outputs
after); ``solve_template`` grinds a regtest header over it; ``TdClient`` is the product's
Template Distribution client (``appliance.stratum_v2.node_link``) with test assertions.
"""

from __future__ import annotations

from appliance.stratum_v2.node_link import TdClient as NodeTdClient
from appliance.stratum_v2.node_link import parse_outputs
from node.mining.assembler import WITNESS_RESERVED_VALUE
from protocols.bitcoin.block import BlockHeader
from protocols.bitcoin.merkle import root_from_branch
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut
from protocols.sv2.messages import NewTemplate, SubmitSolution, TemplateSetNewPrevHash

PAYOUT_SCRIPT = b"\x00\x14" + b"\x22" * 20  # a P2WPKH the tests' "pool" pays itself


def client_coinbase(
    tpl: NewTemplate,
    extranonce: bytes = b"\x01\x02\x03\x04\x05\x06\x07\x08",
    payout: bytes = PAYOUT_SCRIPT,
    *,
    with_witness: bool = True,
) -> Tx:
    outputs = [TxOut(tpl.coinbase_tx_value_remaining, payout)]
    outputs += parse_outputs(tpl.coinbase_tx_outputs, tpl.coinbase_tx_outputs_count)
    txin = TxIn(NULL_OUTPOINT, tpl.coinbase_prefix + extranonce, tpl.coinbase_tx_input_sequence)
    if with_witness and tpl.coinbase_tx_outputs_count:
        txin.witness = [WITNESS_RESERVED_VALUE]
    return Tx(tpl.coinbase_tx_version, [txin], outputs, tpl.coinbase_tx_locktime)


def solve_template(
    tpl: NewTemplate, prev: TemplateSetNewPrevHash, coinbase: Tx, ntime: int | None = None
) -> SubmitSolution:
    """Find a nonce at the template's (regtest) target; the solution a miner would send."""
    root = root_from_branch(coinbase.txid, list(tpl.merkle_path))
    ntime = prev.header_timestamp if ntime is None else ntime
    header = BlockHeader(tpl.version, prev.prev_hash, root, ntime, prev.n_bits, 0)
    target = bits_to_target(prev.n_bits).target
    assert int.from_bytes(prev.target, "little") == target
    for nonce in range(1 << 20):
        header.nonce = nonce
        if int.from_bytes(header.hash, "little") <= target:
            break
    else:
        raise AssertionError("no nonce found; not a regtest target?")
    return SubmitSolution(tpl.template_id, tpl.version, ntime, nonce, coinbase.serialize())


class TdClient(NodeTdClient):
    """The product's Template Distribution client plus the assertions tests want."""

    async def expect(self, kind: type, timeout: float = 10.0):
        event = await self.next(timeout)
        assert isinstance(event, kind), f"expected {kind.__name__}, got {event!r}"
        return event

    async def work(self, timeout: float = 10.0) -> tuple[NewTemplate, TemplateSetNewPrevHash]:
        """A future NewTemplate and the SetNewPrevHash that activates it."""
        tpl = await self.expect(NewTemplate, timeout)
        assert tpl.future_template
        prev = await self.expect(TemplateSetNewPrevHash, timeout)
        assert prev.template_id == tpl.template_id
        return tpl, prev

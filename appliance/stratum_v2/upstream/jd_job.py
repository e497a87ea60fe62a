"""One declared job: our node's template, the pool's payout output, split three ways.

The same coinbase is seen in three shapes, and all must agree byte for byte:

- the JDS gets it in `DeclareMiningJob` with its BIP141 parts (marker, flag, the reserved
  witness value), split around the pool channel's *full* extranonce;
- the pool gets its fields in `SetCustomMiningJob` (scriptSig prefix, outputs as a
  CompactSize-prefixed array, sequence, locktime) and rebuilds it around the same extranonce;
- the downstream server gets a `WorkTemplate` without witness data whose extranonce space is
  ours (`space`): the pool's extranonce prefix and any padding are folded into its prefix.

Outputs: the pool payout (the first output `AllocateMiningJobToken.Success` gave) takes the
template's whole remaining value minus any value the JDS put on its other outputs, then the
JDS's other outputs, then the template's own (the witness commitment) — the spec lets the
client order them, and the declared and custom-job orders are the same by construction.
The scriptSig is the template's prefix (BIP34 height), an optional tag push, and a push
opcode covering the full extranonce, so it stays a well-formed push-only script.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.node_link import WITNESS_COMMITMENT_HEAD, parse_outputs
from appliance.stratum_v2.upstream.base import extranonce_shortfall
from node.mining.assembler import WITNESS_RESERVED_VALUE
from protocols.bitcoin.compact import compact_size, read_compact_size
from protocols.bitcoin.merkle import merkle_branch
from protocols.bitcoin.script import push_data
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut
from protocols.sv2.messages import (
    DeclareMiningJob,
    NewTemplate,
    PushSolution,
    SetCustomMiningJob,
    SubmitSolution,
    TemplateSetNewPrevHash,
)

__all__ = [
    "DeclaredJob",
    "JdJobError",
    "PoolChannel",
    "build_job",
    "parse_output_array",
    "serialize_output_array",
]

MAX_SCRIPT_SIG = 100
MAX_PUSH_OPCODE = 75  # OP_PUSHBYTES_75: a one-byte push covers the extranonce


class JdJobError(ValueError):
    """A job cannot be built from these parts (says which rule it breaks)."""


def parse_output_array(data: bytes) -> list[TxOut]:
    """A CompactSize-prefixed array of consensus-serialized outputs."""
    try:
        count, pos = read_compact_size(data, 0)
        outs = parse_outputs(data[pos:], count)
    except (ValueError, IndexError) as exc:
        raise JdJobError(f"bad output array: {exc}") from None
    return outs


def serialize_output_array(outputs: list[TxOut]) -> bytes:
    return compact_size(len(outputs)) + b"".join(o.serialize() for o in outputs)


@dataclass(frozen=True, slots=True)
class PoolChannel:
    """What the pool's extended channel gave us, and the downstream space we must keep."""

    channel_id: int
    extranonce_prefix: bytes
    extranonce_size: int  # the part after the prefix we may fill
    space: int  # the downstream server's extranonce bytes

    @property
    def full_extranonce_size(self) -> int:
        return len(self.extranonce_prefix) + self.extranonce_size

    @property
    def padding(self) -> bytes:
        if self.extranonce_size < self.space:
            raise JdJobError(extranonce_shortfall(self.space, self.extranonce_size))
        return bytes(self.extranonce_size - self.space)

    def full_extranonce(self, downstream: bytes) -> bytes:
        """The pool channel's full extranonce for a downstream (`space`-byte) extranonce."""
        return self.extranonce_prefix + self.padding + downstream


def _payout_outputs(pool_outputs: list[TxOut], value: int) -> list[TxOut]:
    if not pool_outputs:
        raise JdJobError("the JDS gave no pool payout output")
    others = sum(o.value for o in pool_outputs[1:])
    if others > value:
        raise JdJobError(f"the JDS's outputs ask {others} sat, the template has {value}")
    first = pool_outputs[0]
    return [TxOut(value - others, first.script_pubkey), *pool_outputs[1:]]


@dataclass(frozen=True, slots=True)
class DeclaredJob:
    """Everything one template becomes; messages are made from it on demand."""

    template_id: int
    version: int
    prev_hash: bytes
    nbits: int
    min_ntime: int
    network_target: int
    coinbase_tx_version: int
    script_sig_prefix: bytes
    sequence: int
    outputs: tuple[TxOut, ...]
    locktime: int
    merkle_path: tuple[bytes, ...]
    witness: bool
    declare_prefix: bytes  # witness serialization, up to the full extranonce
    declare_suffix: bytes
    txid_prefix: bytes  # txid serialization, up to the full extranonce
    txid_suffix: bytes
    wtxids: tuple[bytes, ...]
    transactions: tuple[bytes, ...]  # raw, as the TP gave them

    def declare(self, request_id: int, token: bytes) -> DeclareMiningJob:
        return DeclareMiningJob(
            request_id,
            token,
            self.version,
            self.declare_prefix,
            self.declare_suffix,
            self.wtxids,
            b"",
        )

    def missing(self, positions: tuple[int, ...]) -> tuple[bytes, ...]:
        """Raw transactions at `positions` of the wtxid list (bad positions raise)."""
        if any(p >= len(self.transactions) for p in positions):
            raise JdJobError(f"JDS asks for positions {positions}, we declared {len(self.wtxids)}")
        return tuple(self.transactions[p] for p in positions)

    def custom_job(self, channel_id: int, request_id: int, token: bytes) -> SetCustomMiningJob:
        return SetCustomMiningJob(
            channel_id,
            request_id,
            token,
            self.version,
            self.prev_hash,
            self.min_ntime,
            self.nbits,
            self.coinbase_tx_version,
            self.script_sig_prefix,
            self.sequence,
            serialize_output_array(list(self.outputs)),
            self.locktime,
            self.merkle_path,
        )

    def work(self, template_id: int, channel: PoolChannel) -> WorkTemplate:
        """The downstream's work: pool prefix and padding folded into the coinbase prefix."""
        return WorkTemplate(
            template_id=template_id,
            prev_hash=self.prev_hash,
            nbits=self.nbits,
            version=self.version,
            min_ntime=self.min_ntime,
            coinbase_prefix=self.txid_prefix + channel.extranonce_prefix + channel.padding,
            coinbase_suffix=self.txid_suffix,
            extranonce_size=channel.space,
            merkle_path=self.merkle_path,
            transactions=None,  # blocks go out as SubmitSolution/PushSolution, not whole
            witness_reserved=self.witness,
            network_target=self.network_target,
        )

    def coinbase(self, full_extranonce: bytes) -> bytes:
        """The coinbase as the block carries it (with its witness when it has one)."""
        return self.declare_prefix + full_extranonce + self.declare_suffix

    def solution(
        self, full_extranonce: bytes, version: int, ntime: int, nonce: int
    ) -> tuple[SubmitSolution, PushSolution]:
        """A block: SubmitSolution for our node's TP, PushSolution for the JDS."""
        submit = SubmitSolution(
            self.template_id, version, ntime, nonce, self.coinbase(full_extranonce)
        )
        push = PushSolution(
            extranonce=full_extranonce,
            prev_hash=self.prev_hash,
            nonce=nonce,
            ntime=ntime,
            nbits=self.nbits,
            version=version,
        )
        return submit, push


def build_job(
    tpl: NewTemplate,
    prev: TemplateSetNewPrevHash,
    transactions: tuple[bytes, ...],
    pool_outputs: list[TxOut],
    channel: PoolChannel,
    *,
    tag: bytes = b"",
) -> DeclaredJob:
    """Build the job for `tpl` (activated by `prev`) with the TP's raw `transactions`."""
    full = channel.full_extranonce_size
    if full > MAX_PUSH_OPCODE:
        raise JdJobError(f"full extranonce of {full} bytes does not fit a one-byte push")
    script_prefix = bytes(tpl.coinbase_prefix) + (push_data(tag) if tag else b"") + bytes([full])
    if len(script_prefix) + full > MAX_SCRIPT_SIG:
        raise JdJobError(
            f"coinbase scriptSig of {len(script_prefix) + full} bytes is above {MAX_SCRIPT_SIG}"
        )
    channel.padding  # noqa: B018 - raises when the pool's space is below ours
    template_outputs = parse_outputs(bytes(tpl.coinbase_tx_outputs), tpl.coinbase_tx_outputs_count)
    outputs = _payout_outputs(pool_outputs, tpl.coinbase_tx_value_remaining) + template_outputs
    witness = any(o.script_pubkey.startswith(WITNESS_COMMITMENT_HEAD) for o in template_outputs)
    txin = TxIn(NULL_OUTPOINT, script_prefix + bytes(full), tpl.coinbase_tx_input_sequence)
    if witness:
        txin.witness = [WITNESS_RESERVED_VALUE]
    coinbase = Tx(tpl.coinbase_tx_version, [txin], outputs, tpl.coinbase_tx_locktime)
    with_witness = coinbase.serialize(with_witness=True)
    without = coinbase.serialize_without_witness()
    # version | [marker, flag] | input count | prevout | scriptSig length | scriptSig prefix
    cut = 4 + 1 + 36 + 1 + len(script_prefix)
    wcut = cut + (2 if witness else 0)

    parsed = [Tx.from_bytes(raw) for raw in transactions]
    path = tuple(merkle_branch([b"\0" * 32, *(t.txid for t in parsed)], 0)) if parsed else ()
    if path != tuple(bytes(p) for p in tpl.merkle_path):
        raise JdJobError("the template's transactions do not match its merkle path")
    return DeclaredJob(
        template_id=tpl.template_id,
        version=tpl.version,
        prev_hash=bytes(prev.prev_hash),
        nbits=prev.n_bits,
        min_ntime=prev.header_timestamp,
        network_target=int.from_bytes(prev.target, "little"),
        coinbase_tx_version=tpl.coinbase_tx_version,
        script_sig_prefix=script_prefix,
        sequence=tpl.coinbase_tx_input_sequence,
        outputs=tuple(outputs),
        locktime=tpl.coinbase_tx_locktime,
        merkle_path=path,
        witness=witness,
        declare_prefix=with_witness[:wcut],
        declare_suffix=with_witness[wcut + full :],
        txid_prefix=without[:cut],
        txid_suffix=without[cut + full :],
        wtxids=tuple(t.wtxid for t in parsed),
        transactions=tuple(transactions),
    )

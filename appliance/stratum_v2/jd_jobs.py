"""Job Declaration decisions, free of IO: declared coinbases, declared jobs, custom jobs.

A JD client declares a job (DeclareMiningJob) as a coinbase split around its extranonce space,
in BIP141 (witness) serialization, plus the wtxids of the block's other transactions. The
extranonce sits at the end of the coinbase scriptSig: the scriptSig length in the prefix,
minus the scriptSig bytes the prefix already holds, is the full extranonce size (as SRI's
JDS reads it). A declared job is then mined on the pool through SetCustomMiningJob, which must
describe the very same block (prev_hash, nbits, version, coinbase fields, merkle path), and a
solution can come back as PushSolution, from which the full block is rebuilt.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass, field

from appliance.stratum_v2.jobs import WorkTemplate
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.compact import compact_size, read_compact_size
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.merkle import merkle_branch, root_from_branch
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.script import push_int
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx
from protocols.sv2.messages import PushSolution, SetCustomMiningJob

__all__ = [
    "CustomJobError",
    "DeclareError",
    "DeclaredCoinbase",
    "DeclaredJob",
    "JdRejected",
    "check_custom_job",
    "check_payout",
    "parse_declared_coinbase",
    "rebuild_block",
    "work_from_custom_job",
]

_HEADER_TAIL = struct.Struct("<III")


class DeclareError(enum.StrEnum):
    """DeclareMiningJob.Error codes (SRI's spelling where SRI has one)."""

    INVALID_TOKEN = "invalid-mining-job-token"
    INVALID_COINBASE_TX = "invalid-coinbase-tx"
    INVALID_COINBASE_TX_INPUT = "invalid-coinbase-tx-input"
    INVALID_COINBASE_OUTPUTS = "invalid-coinbase-tx-outputs"  # ours: not paying the pool
    MISSING_TXS = "missing-txs"
    STALE_CHAIN_TIP = "stale-chain-tip"  # SRI's JDC treats this one as non-fatal
    INTERNAL_ERROR = "internal-error"
    INVALID_JOB = "invalid-job"  # the declared block would not connect on our tip


class CustomJobError(enum.StrEnum):
    """SetCustomMiningJob.Error codes, as SRI's pool sends them."""

    JD_NOT_SUPPORTED = "jd-not-supported"
    INVALID_CHANNEL_ID = "invalid-channel-id"
    INVALID_TOKEN = "invalid-mining-job-token"
    STALE_CHAIN_TIP = "stale-chain-tip"
    INVALID_NBITS = "invalid-nbits"
    INVALID_VERSION = "invalid-version"
    INVALID_COINBASE_TX_VERSION = "invalid-coinbase-tx-version"
    INVALID_COINBASE_PREFIX = "invalid-coinbase-prefix"
    INVALID_N_SEQUENCE = "invalid-coinbase-tx-input-n-sequence"
    INVALID_COINBASE_OUTPUTS = "invalid-coinbase-tx-outputs"
    INVALID_LOCKTIME = "invalid-coinbase-tx-locktime"
    INVALID_MERKLE_PATH = "invalid-merkle-path"


class JdRejected(Exception):
    """A declaration refused with `code`; `details` goes into error_details."""

    def __init__(self, code: DeclareError, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True)
class DeclaredCoinbase:
    """The declared coinbase with a zero extranonce, and where its extranonce goes."""

    prefix: bytes  # as declared (witness serialization when `segwit`)
    suffix: bytes
    tx: Tx
    extranonce_size: int
    script_prefix: bytes  # scriptSig bytes before the extranonce
    segwit: bool

    def with_extranonce(self, extranonce: bytes) -> Tx:
        if len(extranonce) != self.extranonce_size:
            raise ValueError(f"extranonce of {len(extranonce)} bytes, not {self.extranonce_size}")
        return Tx.from_bytes(self.prefix + extranonce + self.suffix)


def parse_declared_coinbase(prefix: bytes, suffix: bytes) -> DeclaredCoinbase:
    """Parse DeclareMiningJob's coinbase halves; raises `JdRejected` when they are no coinbase."""
    segwit = prefix[4:6] == b"\x00\x01"
    start = 4 + (2 if segwit else 0)  # version, then marker and flag
    if len(prefix) < start + 1 + 36 + 1:
        raise JdRejected(DeclareError.INVALID_COINBASE_TX, "coinbase prefix too short")
    if prefix[start] != 1 or prefix[start + 1 : start + 37] != NULL_OUTPOINT:
        raise JdRejected(
            DeclareError.INVALID_COINBASE_TX_INPUT, "not one input spending the null outpoint"
        )
    try:
        script_len, pos = read_compact_size(prefix, start + 37)
    except (BitcoinProtocolError, IndexError, ValueError):
        raise JdRejected(DeclareError.INVALID_COINBASE_TX, "bad scriptSig length") from None
    in_prefix = len(prefix) - pos
    if not 0 <= in_prefix <= script_len or script_len > 100:
        raise JdRejected(DeclareError.INVALID_COINBASE_TX, "scriptSig does not fit the prefix")
    size = script_len - in_prefix
    try:
        tx = Tx.from_bytes(prefix + bytes(size) + suffix)
    except (BitcoinProtocolError, IndexError, ValueError) as exc:
        raise JdRejected(DeclareError.INVALID_COINBASE_TX, f"unparsable coinbase: {exc}") from None
    if len(tx.inputs) != 1:
        raise JdRejected(DeclareError.INVALID_COINBASE_TX_INPUT, "coinbase has several inputs")
    return DeclaredCoinbase(prefix, suffix, tx, size, prefix[pos:], segwit)


def check_payout(coinbase: Tx, payout_script: bytes) -> None:
    """Every output carrying value pays the pool's script, and at least one does."""
    paying = [o for o in coinbase.outputs if o.value > 0]
    if not any(o.script_pubkey == payout_script for o in paying):
        raise JdRejected(DeclareError.INVALID_COINBASE_OUTPUTS, "no output pays the pool")
    strangers = [o for o in paying if o.script_pubkey != payout_script]
    if strangers:
        raise JdRejected(
            DeclareError.INVALID_COINBASE_OUTPUTS,
            f"{len(strangers)} output(s) pay someone other than the pool",
        )


def check_height(coinbase: Tx, height: int) -> None:
    """BIP34: the scriptSig starts with the height of the block on top of our tip."""
    if not coinbase.inputs[0].script_sig.startswith(push_int(height)):
        raise JdRejected(DeclareError.STALE_CHAIN_TIP, f"coinbase is not for height {height}")


@dataclass(slots=True)
class DeclaredJob:
    """A job the JDS accepted; `prev_hash`/`nbits` are our node's tip when it was declared."""

    owner: int
    request_id: int
    version: int
    coinbase: DeclaredCoinbase
    txs: tuple[Tx, ...]
    prev_hash: bytes  # internal byte order, as in headers
    nbits: int
    height: int
    merkle_path: tuple[bytes, ...] = field(init=False)
    claimed: bool = False  # a SetCustomMiningJob used it

    def __post_init__(self) -> None:
        leaves = [bytes(32), *(tx.txid for tx in self.txs)]
        self.merkle_path = tuple(merkle_branch(leaves, 0))


def check_custom_job(
    job: DeclaredJob, msg: SetCustomMiningJob, full_extranonce_size: int
) -> CustomJobError | None:
    """Does `msg` describe the declared block, on a channel with this extranonce space?"""
    if msg.prev_hash != job.prev_hash:
        return CustomJobError.STALE_CHAIN_TIP
    if msg.nbits != job.nbits:
        return CustomJobError.INVALID_NBITS
    if msg.version != job.version:
        return CustomJobError.INVALID_VERSION
    tx = job.coinbase.tx
    if msg.coinbase_tx_version != tx.version:
        return CustomJobError.INVALID_COINBASE_TX_VERSION
    script_sig = tx.inputs[0].script_sig
    if (
        not script_sig.startswith(msg.coinbase_prefix)
        or len(msg.coinbase_prefix) + full_extranonce_size != len(script_sig)
        or job.coinbase.extranonce_size < full_extranonce_size
    ):
        return CustomJobError.INVALID_COINBASE_PREFIX
    if msg.coinbase_tx_input_n_sequence != tx.inputs[0].sequence:
        return CustomJobError.INVALID_N_SEQUENCE
    outputs = compact_size(len(tx.outputs)) + b"".join(o.serialize() for o in tx.outputs)
    if msg.coinbase_tx_outputs != outputs:
        return CustomJobError.INVALID_COINBASE_OUTPUTS
    if msg.coinbase_tx_locktime != tx.locktime:
        return CustomJobError.INVALID_LOCKTIME
    if tuple(msg.merkle_path) != job.merkle_path:
        return CustomJobError.INVALID_MERKLE_PATH
    return None


def work_from_custom_job(
    job: DeclaredJob, msg: SetCustomMiningJob, full_extranonce_size: int, template_id: int
) -> WorkTemplate:
    """The checked custom job as work for the channel: shares validate like any other job."""
    tx = job.coinbase.tx
    raw = tx.serialize_without_witness()
    start = 4 + 1 + 36 + len(compact_size(len(tx.inputs[0].script_sig))) + len(msg.coinbase_prefix)
    return WorkTemplate(
        template_id=template_id,
        prev_hash=job.prev_hash,
        nbits=job.nbits,
        version=job.version,
        min_ntime=msg.min_ntime,
        coinbase_prefix=raw[:start],
        coinbase_suffix=raw[start + full_extranonce_size :],
        extranonce_size=full_extranonce_size,
        merkle_path=job.merkle_path,
        transactions=job.txs,
        witness_reserved=bool(tx.inputs[0].witness),
    )


def proposal_block(job: DeclaredJob, time: int) -> Block:
    """The declared block with a zero extranonce and nonce, for the node's proposal check
    (getblocktemplate mode "proposal" judges everything but the proof of work)."""
    coinbase = job.coinbase.tx
    root = root_from_branch(coinbase.txid, list(job.merkle_path))
    header = BlockHeader(job.version, job.prev_hash, root, time, job.nbits, 0)
    return Block(header, [coinbase, *job.txs])


def rebuild_block(job: DeclaredJob, push: PushSolution) -> Block | None:
    """The block PushSolution describes on `job`, or None when it is not a valid one of it."""
    if push.prev_hash != job.prev_hash or push.nbits != job.nbits:
        return None
    extranonce = bytes(push.extranonce)
    if len(extranonce) != job.coinbase.extranonce_size:
        return None
    coinbase = job.coinbase.with_extranonce(extranonce)
    root = root_from_branch(coinbase.txid, list(job.merkle_path))
    head = struct.pack("<I", push.version) + job.prev_hash + root
    head += _HEADER_TAIL.pack(push.ntime, push.nbits, push.nonce)
    value = int.from_bytes(hashlib.sha256(hashlib.sha256(head).digest()).digest(), "little")
    if value > bits_to_target(job.nbits).target:
        return None
    return Block(BlockHeader.from_bytes(head), [coinbase, *job.txs])

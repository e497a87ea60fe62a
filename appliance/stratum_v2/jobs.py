"""Jobs: a `WorkTemplate` (what to mine) turned into per-channel SV2 jobs.

A work template splits the coinbase (txid serialization, no BIP141 witness) around an
extranonce space of fixed size. Every channel owns a unique slice of that space:

- extended channels get `extranonce_prefix` (unique per channel) and mine the rest themselves,
  so they receive NewExtendedMiningJob (coinbase prefix/suffix + merkle path);
- standard channels get the whole space as their prefix, so their coinbase, and therefore the
  merkle root, is fixed: they receive header-only NewMiningJob with a per-channel merkle root.

A new prev_hash makes a clean job: a future job (min_ntime empty) followed by SetNewPrevHash
naming it; every job of the previous prev_hash becomes stale.
"""

from __future__ import annotations

import enum
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

from node.mining.assembler import WITNESS_RESERVED_VALUE, coinbase_script_sig
from node.mining.template import BlockTemplate
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.merkle import merkle_branch
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut
from protocols.sv2.messages import NewExtendedMiningJob, NewMiningJob, SetNewPrevHash
from protocols.sv2.messages.base import Message

_sha256 = hashlib.sha256

__all__ = [
    "CHANNEL_PREFIX_SIZE",
    "DEFAULT_EXTRANONCE_SPACE",
    "SOLO_EXTRANONCE_SPACE",
    "VERSION_ROLLING_MASK",
    "ChannelJobs",
    "ChannelKind",
    "GroupChannel",
    "Job",
    "PrevHash",
    "WorkTemplate",
    "work_from_block_template",
]

#: Bytes of the extranonce space the server assigns per channel (4 G channels).
CHANNEL_PREFIX_SIZE = 4
#: Total extranonce bytes in our own coinbases: 4 for the channel, 16 for an extended miner
#: (SRI's translator splits its part again among SV1 miners).
DEFAULT_EXTRANONCE_SPACE = 20
#: Total extranonce bytes when the only upstream is solo on our node (no pools configured):
#: the SV2 maximum (a standard channel's prefix is at most 32 bytes). Miners below us may be
#: proxies, such as another appliance using us as its pool: it needs its own 20 bytes
#: (DEFAULT_EXTRANONCE_SPACE) after our 4-byte channel prefix, so we offer 28. With pools,
#: our space must fit inside what they offer us, so it stays at 20.
SOLO_EXTRANONCE_SPACE = 32
#: BIP323's mask (a superset of BIP320's 0x1fffe000, which SV1 ASICs negotiate).
VERSION_ROLLING_MASK = 0x1FFFFFE0
#: Jobs kept per prev_hash on a channel; older ones answer invalid-job-id.
MAX_LIVE_JOBS = 8
#: Job ids of earlier prev_hashes remembered to answer stale-share rather than invalid-job-id.
MAX_STALE_IDS = 256


class ChannelKind(enum.Enum):
    STANDARD = "standard"
    EXTENDED = "extended"


@dataclass(frozen=True, slots=True)
class WorkTemplate:
    """What every channel mines on: the coinbase around its extranonce space, and the header.

    `transactions` are the block's other transactions when we know them (our own node); a
    template from an upstream pool has None and its solutions go upstream instead.
    """

    template_id: int
    prev_hash: bytes
    nbits: int
    version: int
    min_ntime: int
    coinbase_prefix: bytes
    coinbase_suffix: bytes
    extranonce_size: int
    merkle_path: tuple[bytes, ...]
    transactions: tuple[Tx, ...] | None = None
    witness_reserved: bool = False
    network_target: int = field(default=0)

    def __post_init__(self) -> None:
        if not self.network_target:
            object.__setattr__(self, "network_target", bits_to_target(self.nbits).target)

    def coinbase(self, extranonce: bytes) -> bytes:
        """Coinbase txid serialization for the full extranonce (all channel parts joined)."""
        if len(extranonce) != self.extranonce_size:
            raise ValueError(f"extranonce is {len(extranonce)} bytes, not {self.extranonce_size}")
        return self.coinbase_prefix + extranonce + self.coinbase_suffix

    def merkle_root(self, extranonce: bytes) -> bytes:
        """The root for this extranonce: the hot path of every extended/SV1 share."""
        if len(extranonce) != self.extranonce_size:
            raise ValueError(f"extranonce is {len(extranonce)} bytes, not {self.extranonce_size}")
        sha = _sha256
        h = sha(sha(self.coinbase_prefix + extranonce + self.coinbase_suffix).digest()).digest()
        for sibling in self.merkle_path:  # the coinbase is leaf 0: always the left child
            h = sha(sha(h + sibling).digest()).digest()
        return h

    def block(self, extranonce: bytes, header: BlockHeader) -> Block | None:
        """The full block for a solved header, or None when the transactions are unknown."""
        if self.transactions is None:
            return None
        coinbase = Tx.from_bytes(self.coinbase(extranonce))
        if self.witness_reserved:
            coinbase.inputs[0].witness = [WITNESS_RESERVED_VALUE]
            coinbase.invalidate()
        return Block(header, [coinbase, *self.transactions])


def work_from_block_template(
    template: BlockTemplate,
    payout_script: bytes,
    template_id: int,
    *,
    extranonce_size: int = DEFAULT_EXTRANONCE_SPACE,
    coinbase_tag: bytes = b"",
) -> WorkTemplate:
    """Split our node's template's coinbase around the extranonce space.

    The coinbase pays `coinbasevalue` to `payout_script` and carries the template's witness
    commitment; the scriptSig is the BIP34 height, then the extranonce space, then the tag.
    """
    placeholder = b"\0" * extranonce_size
    script_sig = coinbase_script_sig(template.height, placeholder + coinbase_tag)
    if len(script_sig) > 100:
        raise ValueError("coinbase scriptSig above 100 bytes: shorten the tag")
    outputs = [TxOut(template.coinbasevalue, payout_script)]
    if template.default_witness_commitment is not None:
        outputs.append(TxOut(0, template.default_witness_commitment))
    coinbase = Tx(2, [TxIn(NULL_OUTPOINT, script_sig, 0xFFFFFFFF)], outputs, 0)
    raw = coinbase.serialize_without_witness()
    # version(4) | input count(1) | prevout(36) | scriptSig length(1) | BIP34 height push
    start = 4 + 1 + 36 + 1 + (len(script_sig) - extranonce_size - len(coinbase_tag))
    if raw[start : start + extranonce_size] != placeholder:
        raise AssertionError("extranonce space not where expected in the coinbase")
    txs = tuple(t.tx for t in template.transactions)
    path = tuple(merkle_branch([b"\0" * 32, *(t.txid for t in template.transactions)], 0))
    return WorkTemplate(
        template_id=template_id,
        prev_hash=template.previousblockhash,
        nbits=template.bits,
        version=template.version,
        min_ntime=max(template.curtime, template.mintime),
        coinbase_prefix=raw[:start],
        coinbase_suffix=raw[start + extranonce_size :],
        extranonce_size=extranonce_size,
        merkle_path=path,
        transactions=txs,
        witness_reserved=template.default_witness_commitment is not None,
        network_target=template.target,
    )


@dataclass(frozen=True, slots=True)
class PrevHash:
    prev_hash: bytes
    min_ntime: int
    nbits: int


@dataclass(frozen=True, slots=True)
class Job:
    """One job on one channel. `merkle_root` is set for standard channels (fixed coinbase)."""

    job_id: int
    work: WorkTemplate
    version: int
    merkle_root: bytes | None


@dataclass(slots=True)
class ChannelJobs:
    """The job book of one channel: live jobs of the current prev_hash, stale ids, next id."""

    channel_id: int
    kind: ChannelKind
    extranonce_prefix: bytes
    prevhash: PrevHash | None = None
    live: OrderedDict[int, Job] = field(default_factory=OrderedDict)
    stale: OrderedDict[int, None] = field(default_factory=OrderedDict)
    next_job_id: int = 1

    def miner_extranonce_size(self, work: WorkTemplate) -> int:
        return work.extranonce_size - len(self.extranonce_prefix)

    def _alloc_id(self) -> int:
        job_id = self.next_job_id
        self.next_job_id = job_id + 1 if job_id < 0xFFFFFFFF else 1
        return job_id

    def _retire(self, job_id: int) -> None:
        self.stale[job_id] = None
        while len(self.stale) > MAX_STALE_IDS:
            self.stale.popitem(last=False)

    def lookup(self, job_id: int) -> Job | None:
        return self.live.get(job_id)

    def is_stale(self, job_id: int) -> bool:
        return job_id in self.stale

    def new_job(self, work: WorkTemplate, job_id: int | None = None) -> list[Message]:
        """Messages announcing `work` on this channel (plus SetNewPrevHash when it is clean).

        `job_id` is given when a group channel chose the id for all its members.
        """
        if job_id is None:
            job_id = self._alloc_id()
        else:
            self.next_job_id = max(self.next_job_id, job_id + 1)
        root = None
        if self.kind is ChannelKind.STANDARD:
            root = work.merkle_root(self.extranonce_prefix)
        job = Job(job_id, work, work.version, root)
        clean = self.prevhash is None or self.prevhash.prev_hash != work.prev_hash
        min_ntime = None if clean else work.min_ntime
        if self.kind is ChannelKind.STANDARD:
            announce: Message = NewMiningJob(self.channel_id, job_id, min_ntime, work.version, root)
        else:
            announce = NewExtendedMiningJob(
                self.channel_id,
                job_id,
                min_ntime,
                work.version,
                True,
                work.merkle_path,
                work.coinbase_prefix,
                work.coinbase_suffix,
            )
        if not clean:
            self.live[job_id] = job
            while len(self.live) > MAX_LIVE_JOBS:
                old, _ = self.live.popitem(last=False)
                self._retire(old)
            return [announce]
        for old in list(self.live):
            self._retire(old)
        self.live.clear()
        self.live[job_id] = job
        self.prevhash = PrevHash(work.prev_hash, work.min_ntime, work.nbits)
        activate = SetNewPrevHash(
            self.channel_id, job_id, work.prev_hash, work.min_ntime, work.nbits
        )
        return [announce, activate]


@dataclass(slots=True)
class GroupChannel:
    """Standard channels of one connection whose jobs go out once, on the group channel.

    The group gets NewExtendedMiningJob + SetNewPrevHash (the client computes each member's
    merkle root from its extranonce_prefix); every member's job book records the same job id,
    so shares are still validated per channel. Used when the client did not set
    REQUIRES_STANDARD_JOBS.
    """

    group_channel_id: int
    members: dict[int, ChannelJobs] = field(default_factory=dict)
    prev_hash: bytes | None = None
    next_job_id: int = 1
    current_job_id: int = 0

    def add(self, member: ChannelJobs, work: WorkTemplate | None) -> list[Message]:
        """Join a channel; returns what brings it up to date (a group job, or its own)."""
        self.members[member.channel_id] = member
        if work is None:
            return []
        if self.current_job_id == 0:
            return self.new_job(work)
        return member.new_job(work, job_id=self.current_job_id)

    def remove(self, channel_id: int) -> None:
        self.members.pop(channel_id, None)

    def new_job(self, work: WorkTemplate) -> list[Message]:
        if not self.members:
            return []
        job_id = self.next_job_id
        self.next_job_id = job_id + 1 if job_id < 0xFFFFFFFF else 1
        for member in self.members.values():
            member.new_job(work, job_id=job_id)
        self.current_job_id = job_id
        clean = self.prev_hash != work.prev_hash
        group = self.group_channel_id
        messages: list[Message] = [
            NewExtendedMiningJob(
                group,
                job_id,
                None if clean else work.min_ntime,
                work.version,
                True,
                work.merkle_path,
                work.coinbase_prefix,
                work.coinbase_suffix,
            )
        ]
        if clean:
            self.prev_hash = work.prev_hash
            messages.append(
                SetNewPrevHash(group, job_id, work.prev_hash, work.min_ntime, work.nbits)
            )
        return messages

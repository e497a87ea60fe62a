"""Mining protocol messages (extension_type 0x0000, msg_type 0x10-0x25).

Field orders and channel_msg bits follow SRI's `mining_sv2` crate (which is what real pools
speak). Hashes and targets are 32 raw bytes (U256); targets are 256-bit little-endian integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.sv2.messages.base import Message, message, wire
from protocols.sv2.types import (
    B0_32,
    B0_64K,
    B0_255,
    BOOL,
    F32,
    STR0_255,
    U16,
    U32,
    U64,
    U256,
    Option,
    Seq0_64K,
    Seq0_255,
)

__all__ = [
    "CloseChannel",
    "NewExtendedMiningJob",
    "NewMiningJob",
    "OpenExtendedMiningChannel",
    "OpenExtendedMiningChannelSuccess",
    "OpenMiningChannelError",
    "OpenStandardMiningChannel",
    "OpenStandardMiningChannelSuccess",
    "SetCustomMiningJob",
    "SetCustomMiningJobError",
    "SetCustomMiningJobSuccess",
    "SetExtranoncePrefix",
    "SetGroupChannel",
    "SetNewPrevHash",
    "SetTarget",
    "SubmitSharesError",
    "SubmitSharesExtended",
    "SubmitSharesStandard",
    "SubmitSharesSuccess",
    "UpdateChannel",
    "UpdateChannelError",
]


@message(extension_type=0, msg_type=0x10)
@dataclass(frozen=True, slots=True)
class OpenStandardMiningChannel(Message):
    request_id: int = wire(U32)
    user_identity: str = wire(STR0_255)
    nominal_hash_rate: float = wire(F32)
    max_target: bytes = wire(U256)


@message(extension_type=0, msg_type=0x11)
@dataclass(frozen=True, slots=True)
class OpenStandardMiningChannelSuccess(Message):
    request_id: int = wire(U32)
    channel_id: int = wire(U32)
    target: bytes = wire(U256)
    extranonce_prefix: bytes = wire(B0_32)
    group_channel_id: int = wire(U32)


@message(extension_type=0, msg_type=0x12)
@dataclass(frozen=True, slots=True)
class OpenMiningChannelError(Message):
    request_id: int = wire(U32)
    error_code: str = wire(STR0_255)


@message(extension_type=0, msg_type=0x13)
@dataclass(frozen=True, slots=True)
class OpenExtendedMiningChannel(Message):
    request_id: int = wire(U32)
    user_identity: str = wire(STR0_255)
    nominal_hash_rate: float = wire(F32)
    max_target: bytes = wire(U256)
    min_extranonce_size: int = wire(U16)


@message(extension_type=0, msg_type=0x14)
@dataclass(frozen=True, slots=True)
class OpenExtendedMiningChannelSuccess(Message):
    request_id: int = wire(U32)
    channel_id: int = wire(U32)
    target: bytes = wire(U256)
    extranonce_size: int = wire(U16)
    extranonce_prefix: bytes = wire(B0_32)
    group_channel_id: int = wire(U32)


@message(extension_type=0, msg_type=0x15, channel_msg=True)
@dataclass(frozen=True, slots=True)
class NewMiningJob(Message):
    """min_ntime None marks a future job (activated by a later SetNewPrevHash)."""

    channel_id: int = wire(U32)
    job_id: int = wire(U32)
    min_ntime: int | None = wire(Option(U32))
    version: int = wire(U32)
    merkle_root: bytes = wire(U256)


@message(extension_type=0, msg_type=0x16, channel_msg=True)
@dataclass(frozen=True, slots=True)
class UpdateChannel(Message):
    channel_id: int = wire(U32)
    nominal_hash_rate: float = wire(F32)
    maximum_target: bytes = wire(U256)


@message(extension_type=0, msg_type=0x17, channel_msg=True)
@dataclass(frozen=True, slots=True)
class UpdateChannelError(Message):
    channel_id: int = wire(U32)
    error_code: str = wire(STR0_255)


@message(extension_type=0, msg_type=0x18, channel_msg=True)
@dataclass(frozen=True, slots=True)
class CloseChannel(Message):
    channel_id: int = wire(U32)
    reason_code: str = wire(STR0_255)


@message(extension_type=0, msg_type=0x19, channel_msg=True)
@dataclass(frozen=True, slots=True)
class SetExtranoncePrefix(Message):
    channel_id: int = wire(U32)
    extranonce_prefix: bytes = wire(B0_32)


@message(extension_type=0, msg_type=0x1A, channel_msg=True)
@dataclass(frozen=True, slots=True)
class SubmitSharesStandard(Message):
    channel_id: int = wire(U32)
    sequence_number: int = wire(U32)
    job_id: int = wire(U32)
    nonce: int = wire(U32)
    ntime: int = wire(U32)
    version: int = wire(U32)


@message(extension_type=0, msg_type=0x1B, channel_msg=True)
@dataclass(frozen=True, slots=True)
class SubmitSharesExtended(Message):
    channel_id: int = wire(U32)
    sequence_number: int = wire(U32)
    job_id: int = wire(U32)
    nonce: int = wire(U32)
    ntime: int = wire(U32)
    version: int = wire(U32)
    extranonce: bytes = wire(B0_32)


@message(extension_type=0, msg_type=0x1C, channel_msg=True)
@dataclass(frozen=True, slots=True)
class SubmitSharesSuccess(Message):
    channel_id: int = wire(U32)
    last_sequence_number: int = wire(U32)
    new_submits_accepted_count: int = wire(U32)
    new_shares_sum: int = wire(U64)


@message(extension_type=0, msg_type=0x1D, channel_msg=True)
@dataclass(frozen=True, slots=True)
class SubmitSharesError(Message):
    channel_id: int = wire(U32)
    sequence_number: int = wire(U32)
    error_code: str = wire(STR0_255)


@message(extension_type=0, msg_type=0x1F, channel_msg=True)
@dataclass(frozen=True, slots=True)
class NewExtendedMiningJob(Message):
    """Coinbase prefix/suffix are stripped of BIP141 witness parts (txid serialization)."""

    channel_id: int = wire(U32)
    job_id: int = wire(U32)
    min_ntime: int | None = wire(Option(U32))
    version: int = wire(U32)
    version_rolling_allowed: bool = wire(BOOL)
    merkle_path: tuple[bytes, ...] = wire(Seq0_255(U256))
    coinbase_tx_prefix: bytes = wire(B0_64K)
    coinbase_tx_suffix: bytes = wire(B0_64K)


@message(extension_type=0, msg_type=0x20, channel_msg=True)
@dataclass(frozen=True, slots=True)
class SetNewPrevHash(Message):
    """Mining-protocol SetNewPrevHash (the Template Distribution one is TemplateSetNewPrevHash)."""

    channel_id: int = wire(U32)
    job_id: int = wire(U32)
    prev_hash: bytes = wire(U256)
    min_ntime: int = wire(U32)
    nbits: int = wire(U32)


@message(extension_type=0, msg_type=0x21, channel_msg=True)
@dataclass(frozen=True, slots=True)
class SetTarget(Message):
    channel_id: int = wire(U32)
    maximum_target: bytes = wire(U256)


@message(extension_type=0, msg_type=0x22)
@dataclass(frozen=True, slots=True)
class SetCustomMiningJob(Message):
    channel_id: int = wire(U32)
    request_id: int = wire(U32)
    mining_job_token: bytes = wire(B0_255)
    version: int = wire(U32)
    prev_hash: bytes = wire(U256)
    min_ntime: int = wire(U32)
    nbits: int = wire(U32)
    coinbase_tx_version: int = wire(U32)
    coinbase_prefix: bytes = wire(B0_255)
    coinbase_tx_input_n_sequence: int = wire(U32)
    coinbase_tx_outputs: bytes = wire(B0_64K)
    coinbase_tx_locktime: int = wire(U32)
    merkle_path: tuple[bytes, ...] = wire(Seq0_255(U256))


@message(extension_type=0, msg_type=0x23)
@dataclass(frozen=True, slots=True)
class SetCustomMiningJobSuccess(Message):
    channel_id: int = wire(U32)
    request_id: int = wire(U32)
    job_id: int = wire(U32)


@message(extension_type=0, msg_type=0x24)
@dataclass(frozen=True, slots=True)
class SetCustomMiningJobError(Message):
    channel_id: int = wire(U32)
    request_id: int = wire(U32)
    error_code: str = wire(STR0_255)


@message(extension_type=0, msg_type=0x25)
@dataclass(frozen=True, slots=True)
class SetGroupChannel(Message):
    group_channel_id: int = wire(U32)
    channel_ids: tuple[int, ...] = wire(Seq0_64K(U32))

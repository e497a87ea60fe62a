"""Job Declaration protocol messages (msg_type 0x50-0x60; channel_msg bit always unset).

Follows the current SRI `job_declaration_sv2` crate: IdentifyTransactions (0x53/0x54) is gone,
AllocateMiningJobToken.Success carries only request_id, token and coinbase outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.sv2.messages.base import Message, message, wire
from protocols.sv2.types import B0_16M, B0_32, B0_64K, B0_255, STR0_255, U16, U32, U256, Seq0_64K

__all__ = [
    "AllocateMiningJobToken",
    "AllocateMiningJobTokenSuccess",
    "DeclareMiningJob",
    "DeclareMiningJobError",
    "DeclareMiningJobSuccess",
    "ProvideMissingTransactions",
    "ProvideMissingTransactionsSuccess",
    "PushSolution",
]


@message(extension_type=0, msg_type=0x50)
@dataclass(frozen=True, slots=True)
class AllocateMiningJobToken(Message):
    user_identifier: str = wire(STR0_255)
    request_id: int = wire(U32)


@message(extension_type=0, msg_type=0x51)
@dataclass(frozen=True, slots=True)
class AllocateMiningJobTokenSuccess(Message):
    request_id: int = wire(U32)
    mining_job_token: bytes = wire(B0_255)
    coinbase_outputs: bytes = wire(B0_64K)


@message(extension_type=0, msg_type=0x55)
@dataclass(frozen=True, slots=True)
class ProvideMissingTransactions(Message):
    request_id: int = wire(U32)
    unknown_tx_position_list: tuple[int, ...] = wire(Seq0_64K(U16))


@message(extension_type=0, msg_type=0x56)
@dataclass(frozen=True, slots=True)
class ProvideMissingTransactionsSuccess(Message):
    request_id: int = wire(U32)
    transaction_list: tuple[bytes, ...] = wire(Seq0_64K(B0_16M))


@message(extension_type=0, msg_type=0x57)
@dataclass(frozen=True, slots=True)
class DeclareMiningJob(Message):
    """Coinbase prefix/suffix keep their BIP141 witness parts (unlike NewExtendedMiningJob)."""

    request_id: int = wire(U32)
    mining_job_token: bytes = wire(B0_255)
    version: int = wire(U32)
    coinbase_tx_prefix: bytes = wire(B0_64K)
    coinbase_tx_suffix: bytes = wire(B0_64K)
    wtxid_list: tuple[bytes, ...] = wire(Seq0_64K(U256))
    excess_data: bytes = wire(B0_64K)


@message(extension_type=0, msg_type=0x58)
@dataclass(frozen=True, slots=True)
class DeclareMiningJobSuccess(Message):
    request_id: int = wire(U32)
    new_mining_job_token: bytes = wire(B0_255)


@message(extension_type=0, msg_type=0x59)
@dataclass(frozen=True, slots=True)
class DeclareMiningJobError(Message):
    request_id: int = wire(U32)
    error_code: str = wire(STR0_255)
    error_details: bytes = wire(B0_64K)


@message(extension_type=0, msg_type=0x60)
@dataclass(frozen=True, slots=True)
class PushSolution(Message):
    """Nonce before ntime, as in the spec and in SRI's `job_declaration_sv2` 10.x.

    Older SRI releases put ntime first; both are U32 so the bytes cannot tell them apart.
    Proven against `jd_client_sv2` 0.6.0: with ntime first, the block our JDS rebuilt from its
    PushSolution carried the nonce as its time (node: time-too-old). Build it with keywords.
    """

    extranonce: bytes = wire(B0_32)
    prev_hash: bytes = wire(U256)
    nonce: int = wire(U32)
    ntime: int = wire(U32)
    nbits: int = wire(U32)
    version: int = wire(U32)

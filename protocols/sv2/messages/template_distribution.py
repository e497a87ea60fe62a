"""Template Distribution protocol messages (msg_type 0x70-0x76; channel_msg bit unset)."""

from __future__ import annotations

from dataclasses import dataclass

from protocols.sv2.messages.base import Message, message, wire
from protocols.sv2.types import (
    B0_16M,
    B0_64K,
    B0_255,
    BOOL,
    STR0_255,
    U16,
    U32,
    U64,
    U256,
    Seq0_64K,
    Seq0_255,
)

__all__ = [
    "CoinbaseOutputConstraints",
    "NewTemplate",
    "RequestTransactionData",
    "RequestTransactionDataError",
    "RequestTransactionDataSuccess",
    "SubmitSolution",
    "TemplateSetNewPrevHash",
]


@message(extension_type=0, msg_type=0x70)
@dataclass(frozen=True, slots=True)
class CoinbaseOutputConstraints(Message):
    """Formerly CoinbaseOutputDataSize (which had only the size field)."""

    coinbase_output_max_additional_size: int = wire(U32)
    coinbase_output_max_additional_sigops: int = wire(U16)


@message(extension_type=0, msg_type=0x71)
@dataclass(frozen=True, slots=True)
class NewTemplate(Message):
    template_id: int = wire(U64)
    future_template: bool = wire(BOOL)
    version: int = wire(U32)
    coinbase_tx_version: int = wire(U32)
    coinbase_prefix: bytes = wire(B0_255)
    coinbase_tx_input_sequence: int = wire(U32)
    coinbase_tx_value_remaining: int = wire(U64)
    coinbase_tx_outputs_count: int = wire(U32)
    coinbase_tx_outputs: bytes = wire(B0_64K)
    coinbase_tx_locktime: int = wire(U32)
    merkle_path: tuple[bytes, ...] = wire(Seq0_255(U256))


@message(extension_type=0, msg_type=0x72)
@dataclass(frozen=True, slots=True)
class TemplateSetNewPrevHash(Message):
    """Template Distribution SetNewPrevHash (0x72)."""

    template_id: int = wire(U64)
    prev_hash: bytes = wire(U256)
    header_timestamp: int = wire(U32)
    n_bits: int = wire(U32)
    target: bytes = wire(U256)


@message(extension_type=0, msg_type=0x73)
@dataclass(frozen=True, slots=True)
class RequestTransactionData(Message):
    template_id: int = wire(U64)


@message(extension_type=0, msg_type=0x74)
@dataclass(frozen=True, slots=True)
class RequestTransactionDataSuccess(Message):
    template_id: int = wire(U64)
    excess_data: bytes = wire(B0_64K)
    transaction_list: tuple[bytes, ...] = wire(Seq0_64K(B0_16M))


@message(extension_type=0, msg_type=0x75)
@dataclass(frozen=True, slots=True)
class RequestTransactionDataError(Message):
    template_id: int = wire(U64)
    error_code: str = wire(STR0_255)


@message(extension_type=0, msg_type=0x76)
@dataclass(frozen=True, slots=True)
class SubmitSolution(Message):
    """coinbase_tx is the full serialized coinbase including its witness."""

    template_id: int = wire(U64)
    version: int = wire(U32)
    header_timestamp: int = wire(U32)
    header_nonce: int = wire(U32)
    coinbase_tx: bytes = wire(B0_64K)

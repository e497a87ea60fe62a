"""Extensions-negotiation extension (extension_type 0x0001)."""

from __future__ import annotations

from dataclasses import dataclass

from protocols.sv2.messages.base import Message, message, wire
from protocols.sv2.types import U16, Seq0_64K

__all__ = [
    "EXTENSION_NEGOTIATION",
    "RequestExtensions",
    "RequestExtensionsError",
    "RequestExtensionsSuccess",
]

EXTENSION_NEGOTIATION = 0x0001


@message(extension_type=EXTENSION_NEGOTIATION, msg_type=0x00)
@dataclass(frozen=True, slots=True)
class RequestExtensions(Message):
    request_id: int = wire(U16)
    requested_extensions: tuple[int, ...] = wire(Seq0_64K(U16))


@message(extension_type=EXTENSION_NEGOTIATION, msg_type=0x01)
@dataclass(frozen=True, slots=True)
class RequestExtensionsSuccess(Message):
    request_id: int = wire(U16)
    supported_extensions: tuple[int, ...] = wire(Seq0_64K(U16))


@message(extension_type=EXTENSION_NEGOTIATION, msg_type=0x02)
@dataclass(frozen=True, slots=True)
class RequestExtensionsError(Message):
    request_id: int = wire(U16)
    unsupported_extensions: tuple[int, ...] = wire(Seq0_64K(U16))
    required_extensions: tuple[int, ...] = wire(Seq0_64K(U16))

"""Extension messages and TLV fields.

0x0001 extensions negotiation: RequestExtensions(.Success/.Error), sent right after
SetupConnection.Success. 0x0002 worker-specific hashrate tracking: no messages of its own, a
`user_identity` TLV (field 0x01, up to 32 bytes) appended to SubmitSharesExtended.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.sv2.errors import DecodeError, EncodeError
from protocols.sv2.messages.base import Message, message, wire
from protocols.sv2.tlv import Tlv, find_tlv
from protocols.sv2.types import U16, Seq0_64K

__all__ = [
    "EXTENSION_NEGOTIATION",
    "USER_IDENTITY_FIELD",
    "USER_IDENTITY_MAX",
    "WORKER_HASHRATE_TRACKING",
    "RequestExtensions",
    "RequestExtensionsError",
    "RequestExtensionsSuccess",
    "user_identity_from_tlvs",
    "user_identity_tlv",
]

EXTENSION_NEGOTIATION = 0x0001
WORKER_HASHRATE_TRACKING = 0x0002
USER_IDENTITY_FIELD = 0x01
USER_IDENTITY_MAX = 32


def user_identity_tlv(user_identity: str) -> Tlv:
    """The worker-name TLV to append to SubmitSharesExtended (extension 0x0002)."""
    raw = user_identity.encode("utf-8")
    if len(raw) > USER_IDENTITY_MAX:
        raise EncodeError(f"user_identity is {len(raw)} bytes, limit {USER_IDENTITY_MAX}")
    return Tlv(WORKER_HASHRATE_TRACKING, USER_IDENTITY_FIELD, raw)


def user_identity_from_tlvs(tlvs: tuple[Tlv, ...]) -> str | None:
    """The worker name carried by a share, or None when it has no such TLV."""
    tlv = find_tlv(tlvs, WORKER_HASHRATE_TRACKING, USER_IDENTITY_FIELD)
    if tlv is None:
        return None
    if len(tlv.value) > USER_IDENTITY_MAX:
        raise DecodeError(f"user_identity TLV is {len(tlv.value)} bytes, limit 32")
    return tlv.value.decode("utf-8", "surrogateescape")


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

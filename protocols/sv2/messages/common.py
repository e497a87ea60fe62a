"""Common messages (extension_type 0x0000, msg_type 0x00-0x04) shared by every sub-protocol."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.sv2.messages.base import Message, message, wire
from protocols.sv2.types import STR0_255, U8, U16, U32

__all__ = [
    "ChannelEndpointChanged",
    "MiningClientFlags",
    "MiningServerFlags",
    "Protocol",
    "Reconnect",
    "SetupConnection",
    "SetupConnectionError",
    "SetupConnectionSuccess",
]


class Protocol(enum.IntEnum):
    """SetupConnection.protocol discriminants."""

    MINING = 0
    JOB_DECLARATION = 1
    TEMPLATE_DISTRIBUTION = 2


class MiningClientFlags(enum.IntFlag):
    """SetupConnection.flags sent by a Mining-protocol client."""

    REQUIRES_STANDARD_JOBS = 1 << 0
    REQUIRES_WORK_SELECTION = 1 << 1
    REQUIRES_VERSION_ROLLING = 1 << 2


class MiningServerFlags(enum.IntFlag):
    """SetupConnection.Success.flags returned by a Mining-protocol server."""

    REQUIRES_FIXED_VERSION = 1 << 0
    REQUIRES_EXTENDED_CHANNELS = 1 << 1


@message(extension_type=0, msg_type=0x00)
@dataclass(frozen=True, slots=True)
class SetupConnection(Message):
    protocol: int = wire(U8)
    min_version: int = wire(U16)
    max_version: int = wire(U16)
    flags: int = wire(U32)
    endpoint_host: str = wire(STR0_255)
    endpoint_port: int = wire(U16)
    vendor: str = wire(STR0_255)
    hardware_version: str = wire(STR0_255)
    firmware: str = wire(STR0_255)
    device_id: str = wire(STR0_255)


@message(extension_type=0, msg_type=0x01)
@dataclass(frozen=True, slots=True)
class SetupConnectionSuccess(Message):
    used_version: int = wire(U16)
    flags: int = wire(U32)


@message(extension_type=0, msg_type=0x02)
@dataclass(frozen=True, slots=True)
class SetupConnectionError(Message):
    flags: int = wire(U32)
    error_code: str = wire(STR0_255)


@message(extension_type=0, msg_type=0x03, channel_msg=True)
@dataclass(frozen=True, slots=True)
class ChannelEndpointChanged(Message):
    channel_id: int = wire(U32)


@message(extension_type=0, msg_type=0x04)
@dataclass(frozen=True, slots=True)
class Reconnect(Message):
    new_host: str = wire(STR0_255)
    new_port: int = wire(U16)

"""Per-connection protocol state: framing, message decoding and handshake order.

``PeerProtocol`` is fed bytes and returns messages; it raises a ``P2PError``
subclass when the peer breaks the protocol, and the I/O layer then closes that
connection (and bans when ``error.score`` says so). Rules follow Bitcoin Core:
``version`` first and once (a second one is misbehaviour); ``wtxidrelay`` and
``sendaddrv2`` after ``verack`` disconnect; any other message before the
handshake completes is dropped unseen and counted in ``ignored``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from protocols.bitcoin.p2p.errors import P2PError, ProtocolViolation
from protocols.bitcoin.p2p.framing import MAX_PROTOCOL_MESSAGE_LENGTH, FrameDecoder, encode_frame
from protocols.bitcoin.p2p.messages import (
    MIN_PEER_PROTO_VERSION,
    Message,
    SendAddrV2,
    Verack,
    Version,
    WtxidRelay,
    decode_message,
)


class HandshakeState(enum.Enum):
    AWAIT_VERSION = "await-version"
    AWAIT_VERACK = "await-verack"
    ESTABLISHED = "established"


@dataclass(slots=True)
class PeerFeatures:
    """What the peer announced during the handshake."""

    version: Version | None = None
    wtxid_relay: bool = False
    addrv2: bool = False


@dataclass(slots=True)
class PeerProtocol:
    magic: bytes
    max_payload: int = MAX_PROTOCOL_MESSAGE_LENGTH
    state: HandshakeState = HandshakeState.AWAIT_VERSION
    features: PeerFeatures = field(default_factory=PeerFeatures)
    bytes_received: int = 0
    ignored: int = 0
    _decoder: FrameDecoder = field(init=False)

    def __post_init__(self) -> None:
        self._decoder = FrameDecoder(self.magic, self.max_payload)

    @property
    def established(self) -> bool:
        return self.state is HandshakeState.ESTABLISHED

    def receive_data(self, data: bytes) -> list[Message]:
        """Messages completed by ``data``, in order; raises ``P2PError`` on a violation."""
        self.bytes_received += len(data)
        self._decoder.feed(data)
        out = []
        while (frame := self._decoder.next_frame()) is not None:
            message = decode_message(frame.command, frame.payload)
            if self._admit(message):
                out.append(message)
            else:
                self.ignored += 1
        return out

    def _admit(self, message: Message) -> bool:
        """Update handshake state; False for a message to drop unseen."""
        state = self.state
        if isinstance(message, Version):
            if state is not HandshakeState.AWAIT_VERSION:
                raise ProtocolViolation("duplicate version message")
            if message.version < MIN_PEER_PROTO_VERSION:
                raise ProtocolViolation(f"peer protocol version {message.version} is obsolete")
            self.features.version = message
            self.state = HandshakeState.AWAIT_VERACK
            return True
        if state is HandshakeState.AWAIT_VERSION:
            return False
        if isinstance(message, (WtxidRelay, SendAddrV2)):
            if state is not HandshakeState.AWAIT_VERACK:
                raise ProtocolViolation(f"{message.command.decode()} after verack")
            if isinstance(message, WtxidRelay):
                self.features.wtxid_relay = True
            else:
                self.features.addrv2 = True
            return True
        if isinstance(message, Verack):
            if state is HandshakeState.ESTABLISHED:
                return False  # Core ignores a repeated verack
            self.state = HandshakeState.ESTABLISHED
            return True
        return state is HandshakeState.ESTABLISHED

    def send(self, message: Message) -> bytes:
        """Bytes for ``message`` on this connection."""
        return encode_frame(self.magic, message.command, message.serialize())


__all__ = ["HandshakeState", "P2PError", "PeerFeatures", "PeerProtocol"]

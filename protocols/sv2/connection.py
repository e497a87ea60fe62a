"""Sans-IO SV2 connection: Noise handshake + encrypted framing + message decoding.

Usage (either side)::

    conn = Sv2Connection.initiator(authority_key, now=int(time.time()))
    sock.send(conn.initiate())                     # act 1
    sock.send(conn.receive_data(sock.recv(...)))  # returns bytes to write (act 2 on responders)
    for event in conn.events():                    # or one at a time: conn.next_event()
        ...                                        # HandshakeComplete, a Message, UnknownMessage
    sock.send(conn.send(SetupConnection(...)))

Any `ProtocolError` means the peer misbehaved: close this connection only. After one, the
object stays failed and re-raises it.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from protocols.sv2.errors import ConnectionStateError, ProtocolError
from protocols.sv2.framing import (
    CHANNEL_MSG_BIT,
    MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    FrameHeader,
    encode_header,
)
from protocols.sv2.messages.base import REGISTRY, Message
from protocols.sv2.noise import (
    ACT1_SIZE,
    ACT2_SIZE,
    Certificate,
    NoiseInitiator,
    NoiseResponder,
    NoiseTransport,
)

__all__ = [
    "Event",
    "HandshakeComplete",
    "Role",
    "Sv2Connection",
    "UnknownMessage",
]

_NO_CHANNEL_BIT = ~CHANNEL_MSG_BIT  # messages are looked up without the channel_msg bit


class Role(enum.Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """First event of every connection. Key/certificate are set on the initiator side."""

    remote_static_key: bytes | None = None
    certificate: Certificate | None = None


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A well-framed message of a type we do not know (ignore it, or forward it raw)."""

    header: FrameHeader
    payload: bytes


Event = HandshakeComplete | Message | UnknownMessage


class Sv2Connection:
    """One SV2 connection's protocol state. Build it with `initiator`, `responder` or `plain`."""

    def __init__(
        self,
        role: Role,
        *,
        initiator: NoiseInitiator | None = None,
        responder: NoiseResponder | None = None,
        now: int | None = None,
        max_payload: int = MAX_PAYLOAD,
    ) -> None:
        self.role = role
        self.max_payload = max_payload
        self._initiator = initiator
        self._responder = responder
        self._now = now
        self._encrypted = initiator is not None or responder is not None
        self._hs_buf = bytearray()
        self._transport: NoiseTransport | None = None
        self._plain: FrameDecoder | None = None
        self._events: list[Event] = []
        self._error: ProtocolError | None = None
        self._act1_sent = False
        #: Extension ids negotiated on this connection (set it after RequestExtensions.Success).
        #: While empty, bytes after a message's last field are an error; once set they are
        #: parsed as TLV fields and exposed as `message.tlvs`.
        self.negotiated_extensions: set[int] = set()
        if not self._encrypted:
            self._plain = FrameDecoder(max_payload)
            self._events.append(HandshakeComplete())

    # construction -----------------------------------------------------------------------

    @classmethod
    def initiator(
        cls,
        authority_key: bytes | None,
        *,
        now: int,
        rng: Callable[[int], bytes] = os.urandom,
        max_payload: int = MAX_PAYLOAD,
    ) -> Sv2Connection:
        """Client side; `authority_key` is the pool's x-only authority key (None: no check)."""
        return cls(
            Role.INITIATOR,
            initiator=NoiseInitiator(authority_key, rng),
            now=now,
            max_payload=max_payload,
        )

    @classmethod
    def responder(
        cls,
        static_secret: bytes,
        certificate: Certificate,
        *,
        rng: Callable[[int], bytes] = os.urandom,
        max_payload: int = MAX_PAYLOAD,
    ) -> Sv2Connection:
        """Server side, with the static key and the authority's certificate for it."""
        return cls(
            Role.RESPONDER,
            responder=NoiseResponder(static_secret, certificate, rng),
            max_payload=max_payload,
        )

    @classmethod
    def plain(cls, role: Role, *, max_payload: int = MAX_PAYLOAD) -> Sv2Connection:
        """Unencrypted framing (local links and tests); no handshake."""
        return cls(role, max_payload=max_payload)

    # state ------------------------------------------------------------------------------

    @property
    def handshake_complete(self) -> bool:
        return self._transport is not None or self._plain is not None

    @property
    def encrypted(self) -> bool:
        return self._encrypted

    def _check_ok(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        self._error = exc
        return exc

    # inbound ----------------------------------------------------------------------------

    def initiate(self) -> bytes:
        """Act 1 bytes (initiator only); send them right after connecting."""
        if self._initiator is None or self._act1_sent:
            raise ConnectionStateError("initiate() is for a fresh encrypted initiator")
        self._act1_sent = True
        return self._initiator.write_act1()

    def receive_data(self, data: bytes, now: int | None = None) -> bytes:
        """Feed bytes from the peer; returns bytes that must be written back (maybe empty)."""
        self._check_ok()
        if self._transport is not None:
            self._transport.feed(data)
            return b""
        if self._plain is not None:
            self._plain.feed(data)
            return b""
        self._hs_buf += data
        try:
            return self._advance_handshake(now)
        except ProtocolError as exc:
            raise self._fail(exc) from None

    def _advance_handshake(self, now: int | None) -> bytes:
        if self._responder is not None:
            if len(self._hs_buf) < ACT1_SIZE:
                return b""
            act1 = bytes(self._hs_buf[:ACT1_SIZE])
            rest = bytes(self._hs_buf[ACT1_SIZE:])
            reply, transport = self._responder.read_act1(act1)
            self._start_transport(transport, rest, HandshakeComplete())
            return reply
        assert self._initiator is not None
        if not self._act1_sent:
            raise ConnectionStateError("call initiate() before receiving data")
        if len(self._hs_buf) < ACT2_SIZE:
            return b""
        when = now if now is not None else self._now
        if when is None:
            raise ConnectionStateError("the initiator needs `now` to check the certificate")
        act2 = bytes(self._hs_buf[:ACT2_SIZE])
        rest = bytes(self._hs_buf[ACT2_SIZE:])
        transport = self._initiator.read_act2(act2, when)
        event = HandshakeComplete(self._initiator.remote_static_xonly, self._initiator.certificate)
        self._start_transport(transport, rest, event)
        return b""

    def _start_transport(self, transport: NoiseTransport, rest: bytes, event: Event) -> None:
        transport.max_payload = self.max_payload
        self._transport = transport
        self._hs_buf = bytearray()
        self._events.append(event)
        if rest:
            transport.feed(rest)

    def next_event(self) -> Event | None:
        """Next event, or None until more data arrives. Raises `ProtocolError` on bad input."""
        self._check_ok()
        if self._events:
            return self._events.pop(0)
        source = self._transport if self._transport is not None else self._plain
        if source is None:
            return None
        try:
            frame = source.next_frame()
            if frame is None:
                return None
            return self._decode(frame)
        except ProtocolError as exc:
            raise self._fail(exc) from None

    def events(self) -> Iterator[Event]:
        """The events available now, decoded one at a time: the receive hot path.

        The same events and errors as calling `next_event()` until it returns None, without
        a call and a frame object per message. Leaving the loop early keeps the rest buffered.
        """
        self._check_ok()
        pending = self._events
        while pending:
            yield pending.pop(0)
        source = self._transport if self._transport is not None else self._plain
        if source is None:
            return
        registry = REGISTRY
        frames = source.iter_frames()
        try:
            for ext, msg_type, payload in frames:
                cls = registry.get((ext & _NO_CHANNEL_BIT, msg_type))
                if cls is None:
                    yield UnknownMessage(FrameHeader(ext, msg_type, len(payload)), payload)
                else:
                    yield cls.CODEC.decode(payload, tlvs=bool(self.negotiated_extensions))
        except ProtocolError as exc:
            raise self._fail(exc) from None
        finally:
            frames.close()

    def _decode(self, frame: Frame) -> Event:
        header = frame.header
        cls = REGISTRY.get((header.extension, header.msg_type))
        if cls is None:
            return UnknownMessage(header, frame.payload)
        return cls.CODEC.decode(frame.payload, tlvs=bool(self.negotiated_extensions))

    # outbound ---------------------------------------------------------------------------

    def send(self, message: Message) -> bytes:
        """Bytes to write for one message (channel_msg bit set as SRI does)."""
        payload = message.encode_payload()
        return self.send_frame(
            message.EXTENSION_TYPE, message.MSG_TYPE, payload, message.CHANNEL_MSG
        )

    def send_frame(
        self, extension_type: int, msg_type: int, payload: bytes, channel_msg: bool = False
    ) -> bytes:
        """Bytes to write for a raw payload (e.g. forwarding an `UnknownMessage`)."""
        self._check_ok()
        if not self.handshake_complete:
            raise ConnectionStateError("cannot send messages before the handshake completes")
        header = encode_header(extension_type, msg_type, len(payload), channel_msg)
        if self._transport is not None:
            return self._transport.encrypt_frame(header, payload)
        return header + payload

"""Errors for bad P2P input; each names what was wrong so the peer can be logged and dropped."""

from __future__ import annotations

from protocols.bitcoin.errors import BitcoinProtocolError


class P2PError(BitcoinProtocolError):
    """The peer sent something the protocol does not allow; disconnect it."""

    #: Misbehaviour score in Bitcoin Core's sense; 100 means ban-worthy.
    score = 100


class BadMagic(P2PError):
    """Message start of another network, or a stream that lost sync."""


class BadChecksum(P2PError):
    """Payload does not match the header's checksum (Core disconnects without a ban)."""

    score = 0


class OversizedMessage(P2PError):
    """Declared payload length above the protocol maximum."""


class MalformedMessage(P2PError):
    """A payload that does not parse as its command says."""


class ProtocolViolation(P2PError):
    """A valid message at the wrong time (e.g. anything before ``version``)."""

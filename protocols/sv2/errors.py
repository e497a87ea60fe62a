"""Exception hierarchy of the Stratum V2 layers.

`ProtocolError` is what a peer can cause by sending bad bytes: the caller closes that one
connection and keeps serving the others. `EncodeError` is a local programming error (a value
that does not fit its wire type) and never comes from the network.
"""

from __future__ import annotations


class Sv2Error(Exception):
    """Base of every error raised by `protocols.sv2`."""


class EncodeError(Sv2Error, ValueError):
    """A value does not fit the wire type it is being encoded as."""


class KeyFormatError(Sv2Error, ValueError):
    """A key string is not valid base58check or has the wrong length/version."""


class ProtocolError(Sv2Error):
    """The peer sent something malformed; close this connection."""


class DecodeError(ProtocolError):
    """A message payload does not match its field layout."""


class UnknownMessageError(DecodeError):
    """No message class is registered for (extension_type, msg_type)."""

    def __init__(self, extension_type: int, msg_type: int) -> None:
        super().__init__(f"unknown message ext=0x{extension_type:04x} type=0x{msg_type:02x}")
        self.extension_type = extension_type
        self.msg_type = msg_type


class FramingError(ProtocolError):
    """A frame header is invalid or announces a payload above the allowed size."""


class NoiseError(ProtocolError):
    """The Noise handshake or the encrypted transport failed."""


class HandshakeError(NoiseError):
    """A handshake message is malformed or fails authentication."""


class CertificateError(HandshakeError):
    """The responder's certificate is badly signed, from another authority, or out of date."""


class DecryptionError(NoiseError):
    """An encrypted transport frame failed its MAC check."""


class ConnectionStateError(Sv2Error):
    """The connection object was used out of order (a local bug, not the peer's fault)."""

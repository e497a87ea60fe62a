"""Stratum V2, sans-IO: types -> framing -> noise -> messages -> connection.

Each layer only knows the ones below it; nothing here opens sockets or reads clocks.
"""

from protocols.sv2.connection import HandshakeComplete, Role, Sv2Connection, UnknownMessage
from protocols.sv2.errors import (
    CertificateError,
    ConnectionStateError,
    DecodeError,
    DecryptionError,
    EncodeError,
    FramingError,
    HandshakeError,
    KeyFormatError,
    NoiseError,
    ProtocolError,
    Sv2Error,
    UnknownMessageError,
)
from protocols.sv2.framing import Frame, FrameDecoder, FrameHeader
from protocols.sv2.keys import (
    decode_authority_public_key,
    decode_secret_key,
    encode_authority_public_key,
    encode_secret_key,
)
from protocols.sv2.messages import Message, decode_message, lookup
from protocols.sv2.noise import Certificate, NoiseInitiator, NoiseResponder, NoiseTransport
from protocols.sv2.tlv import Tlv

__all__ = [
    "Certificate",
    "CertificateError",
    "ConnectionStateError",
    "DecodeError",
    "DecryptionError",
    "EncodeError",
    "Frame",
    "FrameDecoder",
    "FrameHeader",
    "FramingError",
    "HandshakeComplete",
    "HandshakeError",
    "KeyFormatError",
    "Message",
    "NoiseError",
    "NoiseInitiator",
    "NoiseResponder",
    "NoiseTransport",
    "ProtocolError",
    "Role",
    "Sv2Connection",
    "Sv2Error",
    "Tlv",
    "UnknownMessage",
    "UnknownMessageError",
    "decode_authority_public_key",
    "decode_message",
    "decode_secret_key",
    "encode_authority_public_key",
    "encode_secret_key",
    "lookup",
]

"""Errors raised by the Bitcoin wire codecs."""

from __future__ import annotations


class BitcoinProtocolError(ValueError):
    """Base class for every error this package raises on bad input."""


class DecodeError(BitcoinProtocolError):
    """Bytes that are not a valid serialization (truncated, oversized, trailing data)."""

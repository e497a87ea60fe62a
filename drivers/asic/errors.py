"""Exceptions raised by the ASIC drivers: one small hierarchy so callers can catch it whole."""

from __future__ import annotations


class AsicError(Exception):
    """Base class for everything the BM13xx drivers raise."""


class FramingError(AsicError):
    """Bytes that do not form a valid BM13xx frame (bad preamble, length or CRC)."""


class ConfigError(AsicError):
    """A setting the chip cannot take (frequency out of PLL range, unknown model, bad mask)."""


class EnumerationError(AsicError):
    """The chain answered with no chips, the wrong chip id, or fewer chips than expected."""


class ChipTimeoutError(AsicError):
    """A chip stopped answering; the chain needs re-initialising."""

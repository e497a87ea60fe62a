"""Mining work as the upper layers (Stratum V1/V2, solo) hand it to the ASIC driver."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from drivers.asic.errors import ConfigError
from protocols.bitcoin.pow import bits_to_target

BIP320_MASK = 0x1FFFE000
"""The version bits a BM13xx can roll (13..28). Wider masks (BIP323 0x1fffffe0) are clamped."""


@dataclass(frozen=True, slots=True)
class MiningJob:
    """One unit of work: the header fields minus the nonce.

    ``prev_hash`` and ``merkle_root`` are 32 bytes in header (internal, little-endian)
    order, i.e. exactly as they sit in the serialized block header. ``target`` is the share
    target as an integer (0 means "the network target from nbits"). ``ref`` is opaque to the
    driver and handed back with every nonce (stratum job id, extranonce2, ...).
    """

    version: int
    prev_hash: bytes
    merkle_root: bytes
    ntime: int
    nbits: int
    version_mask: int = 0
    target: int = 0
    ref: Any = None

    def __post_init__(self) -> None:
        if len(self.prev_hash) != 32 or len(self.merkle_root) != 32:
            raise ConfigError("prev_hash and merkle_root must be 32 bytes")
        for name in ("version", "ntime", "nbits", "version_mask"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise ConfigError(f"{name} must fit 32 bits")

    @property
    def rollable_mask(self) -> int:
        """The part of the pool's version mask the chips can actually roll."""
        return self.version_mask & BIP320_MASK

    def header(self, nonce: int, version: int | None = None) -> bytes:
        """The 80-byte header for ``nonce`` (and a rolled ``version``)."""
        return (
            struct.pack("<I", self.version if version is None else version)
            + self.prev_hash
            + self.merkle_root
            + struct.pack("<III", self.ntime, self.nbits, nonce)
        )

    def network_target(self) -> int:
        """The block target ``nbits`` encodes."""
        return bits_to_target(self.nbits).target

    def share_target(self) -> int:
        return self.target or self.network_target()

"""Compact difficulty encoding ("bits"), targets and chain work."""

from __future__ import annotations

from dataclasses import dataclass

_U256 = (1 << 256) - 1


@dataclass(frozen=True, slots=True)
class DecodedBits:
    target: int
    negative: bool
    overflow: bool


def bits_to_target(bits: int) -> DecodedBits:
    """Decode nBits exactly as arith_uint256::SetCompact does, flags included.

    As in Core, the sign and overflow flags look at the mantissa *after* the shift for
    sizes below 3, so ``0x00923456`` decodes to 0 and is not negative.
    """
    size = bits >> 24
    word = bits & 0x007FFFFF
    if size <= 3:
        word >>= 8 * (3 - size)
        target = word
    else:
        target = (word << (8 * (size - 3))) & _U256  # arith_uint256 drops bits past 256
    negative = word != 0 and (bits & 0x00800000) != 0
    overflow = word != 0 and (
        size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)
    )
    return DecodedBits(target, negative, overflow)


def target_to_bits(target: int, negative: bool = False) -> int:
    """Encode a target as nBits (arith_uint256::GetCompact)."""
    if target < 0 or target.bit_length() > 256:
        raise ValueError("target must be a 256-bit unsigned integer")
    size = (target.bit_length() + 7) // 8
    compact = target << 8 * (3 - size) if size <= 3 else target >> 8 * (size - 3)
    if compact & 0x00800000:
        compact >>= 8
        size += 1
    compact |= size << 24
    if negative and compact & 0x007FFFFF:
        compact |= 0x00800000
    return compact


def block_work(bits: int) -> int:
    """Expected hashes to find a block at ``bits``: 2^256 / (target + 1)."""
    decoded = bits_to_target(bits)
    if decoded.negative or decoded.overflow or decoded.target == 0:
        return 0
    return (1 << 256) // (decoded.target + 1)


def hash_meets_target(block_hash: bytes, target: int) -> bool:
    """Compare a hash in internal byte order (little-endian number) with a target."""
    return int.from_bytes(block_hash, "little") <= target


def difficulty(bits: int, pow_limit_bits: int = 0x1D00FFFF) -> float:
    """Difficulty relative to the difficulty-1 target, as getdifficulty reports it."""
    return bits_to_target(pow_limit_bits).target / max(bits_to_target(bits).target, 1)

"""Hashing-PLL settings: search, encode/decode for register 0x08, and frequency ramps.

f = 25 MHz x fbdiv / (refdiv x postdiv1 x postdiv2), VCO = 25 MHz x fbdiv / refdiv.
The search prefers, in order: the frequency closest to the target, then the lowest VCO
(less power, more margin), then the smallest post-divider product. Jumping the PLL in one
step browns out a loaded chain, so frequency changes are applied as a ramp.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.asic.errors import ConfigError

from .chips import ChipSpec, PostDivStyle

REF_MHZ = 25.0
VDO_HIGH_VCO = 0x50
VDO_LOW_VCO = 0x40
HIGH_VCO_MHZ = 2400.0
RAMP_STEP_MHZ = 6.25
RAMP_INTERVAL_S = 0.1
RAMP_START_MHZ = 56.25  # the first setting written after reset before ramping up


@dataclass(frozen=True, slots=True)
class PllSetting:
    fbdiv: int
    refdiv: int
    postdiv1: int
    postdiv2: int

    @property
    def vco_mhz(self) -> float:
        return REF_MHZ * self.fbdiv / self.refdiv

    @property
    def frequency_mhz(self) -> float:
        return self.vco_mhz / (self.postdiv1 * self.postdiv2)


def _candidates():
    # Search order matters only for exact ties: refdiv 2 -> 1, postdiv1 7 -> 1, postdiv2 7 -> 1.
    for refdiv in (2, 1):
        for p1 in range(7, 0, -1):
            for p2 in range(7, 0, -1):
                if p1 > p2:
                    yield refdiv, p1, p2


def frequency_range(spec: ChipSpec) -> tuple[float, float]:
    """Lowest and highest frequency the PLL of ``spec`` can produce."""
    lo = min(REF_MHZ * spec.fbdiv_min / (r * p1 * p2) for r, p1, p2 in _candidates())
    hi = max(REF_MHZ * spec.fbdiv_max / (r * p1 * p2) for r, p1, p2 in _candidates())
    return lo, hi


def find_pll(spec: ChipSpec, target_mhz: float) -> PllSetting:
    """Best PLL setting for ``target_mhz`` (see module docstring for the preference order)."""
    lo, hi = frequency_range(spec)
    if not lo <= target_mhz <= hi:
        raise ConfigError(
            f"{spec.model}: {target_mhz} MHz outside the PLL range {lo:.2f}-{hi:.2f} MHz"
        )
    best: PllSetting | None = None
    best_key: tuple[float, float, int] | None = None
    for refdiv, p1, p2 in _candidates():
        fbdiv = round(target_mhz * refdiv * p1 * p2 / REF_MHZ)
        fbdiv = min(max(fbdiv, spec.fbdiv_min), spec.fbdiv_max)
        setting = PllSetting(fbdiv, refdiv, p1, p2)
        key = (
            round(abs(setting.frequency_mhz - target_mhz), 9),
            setting.vco_mhz,
            p1 * p2,
        )
        if best_key is None or key < best_key:
            best, best_key = setting, key
    assert best is not None
    return best


def encode_pll(spec: ChipSpec, setting: PllSetting) -> bytes:
    """Register 0x08 value: vdo, fbdiv, refdiv, postdiv."""
    if spec.postdiv_style is PostDivStyle.MINUS_ONE:
        postdiv = ((setting.postdiv1 - 1) << 4) | (setting.postdiv2 - 1)
        vdo = VDO_HIGH_VCO if setting.vco_mhz >= HIGH_VCO_MHZ else VDO_LOW_VCO
    else:
        postdiv = (setting.postdiv1 << 4) | setting.postdiv2
        vdo = VDO_LOW_VCO
    return bytes((vdo, setting.fbdiv, setting.refdiv, postdiv))


def decode_pll(spec: ChipSpec, value: bytes) -> PllSetting:
    """Inverse of :func:`encode_pll` (what a chip makes of a register-0x08 write)."""
    if len(value) != 4:
        raise ConfigError("PLL register value must be 4 bytes")
    _vdo, fbdiv, refdiv, postdiv = value
    if spec.postdiv_style is PostDivStyle.MINUS_ONE:
        p1, p2 = (postdiv >> 4) + 1, (postdiv & 0x0F) + 1
    else:
        p1, p2 = postdiv >> 4, postdiv & 0x0F
    if refdiv == 0 or p1 == 0 or p2 == 0:
        raise ConfigError(f"PLL value {value.hex()} has a zero divider")
    return PllSetting(fbdiv, refdiv, p1, p2)


def ramp_steps(start_mhz: float, target_mhz: float, step_mhz: float = RAMP_STEP_MHZ) -> list[float]:
    """Intermediate and final frequencies to walk from ``start`` to ``target``.

    Excludes ``start``, always ends exactly at ``target``; each step is at most ``step_mhz``.
    """
    if step_mhz <= 0:
        raise ConfigError("ramp step must be positive")
    steps: list[float] = []
    current = start_mhz
    direction = 1.0 if target_mhz > start_mhz else -1.0
    while abs(target_mhz - current) > 1e-9:
        current += direction * min(step_mhz, abs(target_mhz - current))
        steps.append(round(current, 6))
    return steps

"""The board table. Add a board by adding a row; nothing else changes.

Limits follow the Bitaxe-class behaviour recorded in
``shared/reference/mining-os.md`` (overheat at chip 75 °C / VR 105 °C; core
voltage 1.0-1.3 V class on BM136x/BM1370, higher on BM1397) and the chip
defaults in ``shared/reference/bm13xx.md``. The "-class" boards describe what
this stack drives: an EMC2101 fan/diode controller at 0x4C and a TPS546
regulator at 0x24.
"""

from __future__ import annotations

from drivers.asic.bm13xx import CHIPS  # chip facts live with the chip drivers
from drivers.boards.model import (
    BoardDef,
    I2CPart,
    SafeLimits,
    TransportKind,
    UsbId,
)

FAN = I2CPart("EMC2101", 0x4C)
POWER = I2CPart("TPS546", 0x24)


def _bitaxe_limits(vmin: int, vmax: int, fmin: float, fmax: float) -> SafeLimits:
    return SafeLimits(
        max_chip_temp_c=75.0,
        max_vr_temp_c=105.0,
        vcore_min_mv=vmin,
        vcore_max_mv=vmax,
        freq_min_mhz=fmin,
        freq_max_mhz=fmax,
    )


BOARDS: tuple[BoardDef, ...] = (
    BoardDef(
        name="bitaxe-ultra",
        description="single BM1366 (Bitaxe Ultra-class)",
        chip=CHIPS["BM1366"],
        chip_count=1,
        chips_per_domain=1,
        limits=_bitaxe_limits(1000, 1300, 400, 575),
        default_freq_mhz=485,
        default_vcore_mv=1200,
        fan=FAN,
        power=POWER,
        aliases=("ultra", "bm1366"),
    ),
    BoardDef(
        name="bitaxe-supra",
        description="single BM1368 (Bitaxe Supra-class)",
        chip=CHIPS["BM1368"],
        chip_count=1,
        chips_per_domain=1,
        limits=_bitaxe_limits(1000, 1300, 400, 650),
        default_freq_mhz=490,
        default_vcore_mv=1166,
        fan=FAN,
        power=POWER,
        aliases=("supra", "bm1368"),
    ),
    BoardDef(
        name="bitaxe-gamma",
        description="single BM1370 (Bitaxe Gamma-class)",
        chip=CHIPS["BM1370"],
        chip_count=1,
        chips_per_domain=1,
        limits=_bitaxe_limits(1000, 1300, 400, 800),
        default_freq_mhz=525,
        default_vcore_mv=1150,
        fan=FAN,
        power=POWER,
        aliases=("gamma", "bm1370"),
    ),
    BoardDef(
        name="bitaxe-max",
        description="single BM1397 (Bitaxe Max-class)",
        chip=CHIPS["BM1397"],
        chip_count=1,
        chips_per_domain=1,
        limits=_bitaxe_limits(1100, 1500, 300, 650),
        default_freq_mhz=425,
        default_vcore_mv=1400,
        fan=FAN,
        power=POWER,
        aliases=("max", "bm1397"),
    ),
    BoardDef(
        name="quad-bm1370",
        description="4 x BM1370 in 2 series voltage domains (2 chips each)",
        chip=CHIPS["BM1370"],
        chip_count=4,
        chips_per_domain=2,
        vin_v=12.0,
        limits=_bitaxe_limits(1000, 1300, 400, 700),
        default_freq_mhz=525,
        default_vcore_mv=1150,
        fan=FAN,
        power=POWER,
        aliases=("quad",),
    ),
    BoardDef(
        name="hex-bm1370",
        description="6 x BM1370 in 3 series voltage domains (2 chips each)",
        chip=CHIPS["BM1370"],
        chip_count=6,
        chips_per_domain=2,
        vin_v=12.0,
        limits=_bitaxe_limits(1000, 1300, 400, 700),
        default_freq_mhz=525,
        default_vcore_mv=1150,
        fan=FAN,
        power=POWER,
        aliases=("hex",),
    ),
    BoardDef(
        name="compac-f",
        description="USB stick, single BM1397 behind an FTDI FT-X (GekkoScience Compac F-class)",
        chip=CHIPS["BM1397"],
        chip_count=1,
        chips_per_domain=1,
        # Fixed on-stick regulator: no Vcore control, so min = max = nominal.
        limits=SafeLimits(
            max_chip_temp_c=85.0,
            max_vr_temp_c=105.0,
            vcore_min_mv=1400,
            vcore_max_mv=1400,
            freq_min_mhz=100,
            freq_max_mhz=500,
        ),
        default_freq_mhz=200,
        default_vcore_mv=1400,
        transport=TransportKind.USB,
        usb_id=UsbId(0x0403, 0x6015),
        # FTDI cannot do 3.125 Mbaud: chip reg 18 = 00 00 61 31 with FTDI divisor 2.
        fast_baud=1_500_000,
        fast_baud_value=bytes.fromhex("00006131"),
        reset_low_ms=1000,
        reset_high_ms=200,
        aliases=("compacf", "gekko-compac-f"),
    ),
)

"""BM1397 (Antminer S17, Bitaxe Max, GekkoScience Compac F): 168 cores / 672 small cores.

The one midstate chip of the family: the host hashes the first 64 header bytes for up to
four rolled versions and the chip finishes the job; there is no version-rolling register.
"""

from __future__ import annotations

from .chips import ChipSpec, JobFormat, PostDivStyle, RegisterWrite, register_chip
from .registers import Register


def _w(register: int, value: str) -> RegisterWrite:
    return RegisterWrite(register, bytes.fromhex(value))


SPEC = register_chip(
    ChipSpec(
        model="BM1397",
        chip_id=0x1397,
        cores=168,
        small_cores=672,
        default_mhz=425.0,
        default_mv=1400,
        fbdiv_min=60,
        fbdiv_max=200,
        postdiv_style=PostDivStyle.PLAIN,
        job_format=JobFormat.MIDSTATE,
        reply_len=9,
        job_id_step=4,
        reply_job_mask=0xFC,
        reply_job_shift=0,
        reply_sub_mask=0x03,
        rolls_version=False,
        max_midstates=4,
        default_baud=115_200,
        misc_control_default=bytes.fromhex("00007a31"),
        fast_baud_register=Register.MISC_CONTROL,
        fast_baud_value=bytes.fromhex("00006031"),
        fast_baud=3_125_000,
        hash_counter_register=Register.HASH_RATE,
        hashes_per_count=2.0**20,
        counter_is_rate=True,
        post_address_writes=(
            _w(Register.CLOCK_ORDER_CONTROL0, "00000000"),
            _w(Register.CLOCK_ORDER_CONTROL1, "00000000"),
            _w(Register.ORDERED_CLOCK_ENABLE, "00000001"),
            _w(Register.CORE_REGISTER_CONTROL, "80008074"),
            _w(Register.PLL3, "c0700111"),
        ),
    )
)

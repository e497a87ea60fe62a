"""BM1366 (Antminer S19 XP, Bitaxe Ultra): 112 cores / 894 small cores, 485 MHz."""

from __future__ import annotations

from .chips import (
    BM136X_PRE_ADDRESS,
    ChipSpec,
    JobFormat,
    PostDivStyle,
    RegisterWrite,
    bm136x_post_address,
    register_chip,
)
from .registers import Register

SPEC = register_chip(
    ChipSpec(
        model="BM1366",
        chip_id=0x1366,
        cores=112,
        small_cores=894,
        default_mhz=485.0,
        default_mv=1200,
        fbdiv_min=144,
        fbdiv_max=235,
        postdiv_style=PostDivStyle.MINUS_ONE,
        job_format=JobFormat.HEADER,
        reply_len=11,
        job_id_step=8,
        reply_job_mask=0xF8,
        reply_job_shift=0,
        reply_sub_mask=0x07,
        rolls_version=True,
        max_midstates=1,
        default_baud=115_200,
        misc_control_default=bytes.fromhex("00007a31"),
        fast_baud_register=Register.FAST_UART,
        fast_baud_value=bytes.fromhex("11300200"),
        fast_baud=1_000_000,
        hash_counter_register=Register.TOTAL_COUNTER,
        hashes_per_count=2.0**32,
        counter_is_rate=False,
        pre_address_writes=BM136X_PRE_ADDRESS,
        post_address_writes=bm136x_post_address("80008540", "80008020", "00011111"),
        post_pll_writes=(RegisterWrite(Register.HASH_COUNTING, bytes.fromhex("000015a4")),),
    )
)

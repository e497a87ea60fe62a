"""BM1370 (Antminer S21 Pro, Bitaxe Gamma): 128 cores / 2040 small cores, 525 MHz."""

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
        model="BM1370",
        chip_id=0x1370,
        cores=128,
        small_cores=2040,
        default_mhz=525.0,
        default_mv=1150,
        fbdiv_min=160,
        fbdiv_max=239,
        postdiv_style=PostDivStyle.MINUS_ONE,
        job_format=JobFormat.HEADER,
        reply_len=11,
        job_id_step=24,
        reply_job_mask=0xF0,
        reply_job_shift=1,
        reply_sub_mask=0x0F,
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
        post_address_writes=bm136x_post_address("80008b00", "80008018", "02111111"),
        post_pll_writes=(RegisterWrite(Register.HASH_COUNTING, bytes.fromhex("00001eb5")),),
    )
)

"""The chip-spec table: everything that differs between BM1366, BM1368, BM1370 and BM1397.

Chip differences live here as data (ESP-Miner's device-config idea) so the shared codec,
PLL search and driver never branch on a model name. Each ``bm13NN.py`` module builds its
spec; :data:`CHIPS` collects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from drivers.asic.errors import ConfigError

from .registers import Register


class PostDivStyle(Enum):
    """How register 0x08 encodes the two post-dividers."""

    MINUS_ONE = "minus_one"  # BM1366/68/70: ((p1-1) << 4) | (p2-1), vdo from VCO
    PLAIN = "plain"  # BM1397: (p1 << 4) | p2, vdo always 0x40


class JobFormat(Enum):
    """What a job frame carries."""

    HEADER = "header"  # BM1366/68/70: whole header fields, chip rolls versions itself
    MIDSTATE = "midstate"  # BM1397: host-computed SHA-256 midstates (up to 4 versions)


@dataclass(frozen=True, slots=True)
class RegisterWrite:
    """One register write of the init sequence; ``per_chip`` repeats it for every address."""

    register: int
    value: bytes
    per_chip: bool = False


@dataclass(frozen=True, slots=True)
class ChipSpec:
    model: str
    chip_id: int
    cores: int
    small_cores: int
    default_mhz: float
    default_mv: int
    fbdiv_min: int
    fbdiv_max: int
    postdiv_style: PostDivStyle
    job_format: JobFormat
    reply_len: int  # bytes per chip->host frame
    job_id_step: int  # TX job id advances by this, modulo 128
    reply_job_mask: int  # RX: job id = (byte7 & mask) >> shift
    reply_job_shift: int
    reply_sub_mask: int  # RX: small core (BM136x) or midstate index (BM1397) = byte7 & mask
    rolls_version: bool  # has the version-rolling register 0xA4
    max_midstates: int
    default_baud: int  # chip UART rate after reset
    misc_control_default: bytes  # register 0x18 value that keeps the default baud
    fast_baud_register: int
    fast_baud_value: bytes
    fast_baud: int  # host rate after the fast-baud write
    hash_counter_register: int
    hashes_per_count: float  # counter register -> hashes (or H/s for BM1397's rate register)
    counter_is_rate: bool
    pre_address_writes: tuple[RegisterWrite, ...] = field(default=())
    post_address_writes: tuple[RegisterWrite, ...] = field(default=())
    post_pll_writes: tuple[RegisterWrite, ...] = field(default=())

    # -- job ids ---------------------------------------------------------------------------
    def next_job_id(self, previous: int) -> int:
        """The TX job id after ``previous``."""
        return (previous + self.job_id_step) % 128

    @property
    def job_id_slots(self) -> int:
        """How many jobs can be in flight before an id repeats."""
        seen, jid = set(), 0
        while jid not in seen:
            seen.add(jid)
            jid = self.next_job_id(jid)
        return len(seen)

    def decode_reply_id(self, byte7: int) -> tuple[int, int]:
        """Reply byte 7 -> (job id as sent, small core or midstate index)."""
        return (byte7 & self.reply_job_mask) >> self.reply_job_shift, byte7 & self.reply_sub_mask

    def encode_reply_id(self, job_id: int, sub: int = 0) -> int:
        """Chip side: the byte 7 a chip answers with for ``job_id`` (inverse of decode)."""
        return ((job_id << self.reply_job_shift) & self.reply_job_mask) | (
            sub & self.reply_sub_mask
        )

    # -- hashrate --------------------------------------------------------------------------
    def expected_hashrate(self, frequency_mhz: float, chips: int = 1) -> float:
        """Nominal H/s: frequency x small cores x chips."""
        return frequency_mhz * 1e6 * self.small_cores * chips

    @property
    def chip_id_value(self) -> int:
        """Register 0x00 value a chip reports: id in the top two bytes."""
        return self.chip_id << 16


def _w(register: int, value: str, per_chip: bool = False) -> RegisterWrite:
    return RegisterWrite(register, bytes.fromhex(value), per_chip)


# Init writes shared by the BM1366/68/70 family (values from Bitaxe-class boards).
# Bitaxe firmware also writes MISC_CONTROL (0x18) = FF0FC100 / F000C100 here; its bits 8-12
# are the UART divider, and those values would select 1.5625 Mbaud while the host is still
# at 115200. We leave 0x18 at its reset value and switch baud only through 0x28.
BM136X_PRE_ADDRESS = (_w(Register.REG_A8, "00070000"),)


def bm136x_post_address(core_a: str, core_b: str, io_driver: str) -> tuple[RegisterWrite, ...]:
    return (
        _w(Register.CORE_REGISTER_CONTROL, core_a),
        _w(Register.CORE_REGISTER_CONTROL, core_b),
        _w(Register.ANALOG_MUX, "00000003"),
        _w(Register.IO_DRIVER_STRENGTH, io_driver),
        _w(Register.REG_A8, "000701f0", per_chip=True),
        _w(Register.CORE_REGISTER_CONTROL, core_a, per_chip=True),
        _w(Register.CORE_REGISTER_CONTROL, core_b, per_chip=True),
        _w(Register.CORE_REGISTER_CONTROL, "800082aa", per_chip=True),
    )


CHIPS: dict[str, ChipSpec] = {}


def register_chip(spec: ChipSpec) -> ChipSpec:
    CHIPS[spec.model] = spec
    return spec


def get_chip(model: str | int) -> ChipSpec:
    """Look a chip up by model name ("BM1370", "bm1370") or chip id (0x1370)."""
    # Importing the per-chip modules fills CHIPS.
    from . import bm1366, bm1368, bm1370, bm1397  # noqa: F401

    if isinstance(model, int):
        for spec in CHIPS.values():
            if spec.chip_id == model:
                return spec
        raise ConfigError(f"unknown chip id {model:#06x}")
    try:
        return CHIPS[model.upper()]
    except KeyError:
        raise ConfigError(f"unknown chip model {model!r}; known: {sorted(CHIPS)}") from None

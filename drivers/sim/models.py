"""What a simulated chip needs to know about its own model.

This is the chip's view, kept separate from the host driver's spec tables in
``drivers.asic.bm13xx`` on purpose: the simulator must behave like silicon, not
like our host code, so a mistake in one side shows up as a test failure instead
of being copied into both.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.sim.errors import SimConfigError

REF_CLOCK_MHZ = 25.0
"""Every BM13xx derives its PLLs and UART divider from a 25 MHz reference."""


@dataclass(frozen=True, slots=True)
class SimChipModel:
    name: str
    chip_id: int
    cores: int
    small_cores: int
    default_mhz: float
    default_mv: int
    job_body_len: int  # job frame data bytes between LEN and CRC16
    reply_len: int  # bytes per chip -> host frame
    rolls_version: bool  # has register 0xA4 and reports rolled version bits
    postdiv_minus_one: bool  # BM136x/1370 store (p-1) in the post-divider nibbles
    joules_per_th: float  # efficiency at default frequency and voltage (physics model)

    def encode_reply_id(self, job_id: int, sub: int) -> int:
        """Byte 7 of a nonce reply: the job id as this chip echoes it plus core/midstate bits."""
        if self.chip_id == 0x1366:
            return (job_id & 0xF8) | (sub & 0x07)
        if self.chip_id in (0x1368, 0x1370):
            return ((job_id << 1) & 0xF0) | (sub & 0x0F)
        return (job_id & 0xFC) | (sub & 0x03)  # BM1397: midstate index

    @property
    def nonce_cores(self) -> int:
        """Cores that own a slice of the nonce space (core id lives in 7 nonce bits)."""
        return min(self.cores, 128)


MODELS: dict[str, SimChipModel] = {
    m.name: m
    for m in (
        SimChipModel("BM1366", 0x1366, 112, 894, 485.0, 1200, 82, 11, True, True, 22.0),
        SimChipModel("BM1368", 0x1368, 80, 1276, 490.0, 1166, 82, 11, True, True, 20.0),
        SimChipModel("BM1370", 0x1370, 128, 2040, 525.0, 1150, 82, 11, True, True, 16.0),
        SimChipModel("BM1397", 0x1397, 168, 672, 425.0, 1400, 146, 9, False, False, 35.0),
    )
}


def get_model(name: str) -> SimChipModel:
    """Look a model up by name, case-insensitively."""
    try:
        return MODELS[name.upper()]
    except KeyError:
        raise SimConfigError(
            f"unknown chip model {name!r}; choose one of {sorted(MODELS)}"
        ) from None

"""BM13xx family (BM1366, BM1368, BM1370, BM1397): the shared wire core + chip-spec table.

Everything here is sans-IO (bytes in, events out) and is used from both ends of the wire:
the host driver (:mod:`drivers.asic.driver`) and the simulated chips (:mod:`drivers.sim`).

Public API
==========

Chip specs (``chips.py``; one small module per chip: ``bm1366.py`` ... ``bm1397.py``)
    ``get_chip("BM1370" | 0x1370) -> ChipSpec``, ``CHIPS`` (model -> spec).
    ``ChipSpec`` fields: ``model, chip_id, cores, small_cores, default_mhz, default_mv,
    fbdiv_min/max, job_format (HEADER | MIDSTATE), reply_len (11 | 9), rolls_version,
    max_midstates, default_baud, fast_baud_register, fast_baud_value, fast_baud,
    hash_counter_register, hashes_per_count, counter_is_rate``, init write lists.
    Job ids: ``spec.next_job_id(prev)`` (TX), ``spec.decode_reply_id(byte7) -> (job_id, sub)``,
    ``spec.encode_reply_id(job_id, sub) -> byte7`` (chip side), ``spec.chip_id_value``
    (register 0x00 contents), ``spec.expected_hashrate(mhz, chips)``.

Frames (``frames.py``)
    Host -> chip builders: ``command(header, data)``, ``read_register(reg, chip=None)``,
    ``write_register(reg, value, chip=None)`` (None = broadcast), ``set_address(addr)``,
    ``chain_inactive()``, ``job_frame(body)``; ``HeaderJob`` (BM136x) and ``MidstateJob``
    (BM1397) with ``.body()``, ``.frame()`` and ``.from_body(body)``.
    Chip -> host: ``ReplyDecoder(spec).feed(chunk) -> [NonceReply | RegisterReply]``
    (resynchronising, counts drops in ``.stats``), ``parse_reply(spec, frame)`` (strict).
    Chip side: ``CommandDecoder().feed(chunk) -> [CommandFrame | JobFrame]``,
    ``parse_command(frame)`` (strict), ``nonce_reply(spec, nonce, job_id, sub, version_bits)``,
    ``register_reply(spec, value, chip_address, register)``.
    ``NonceReply.nonce`` is the header nonce (wire bytes = header bytes); ``version_bits``
    are already shifted (rolled version = job.version | version_bits, within the mask).
    The nonce's big-endian bits 17..24 name the chip address, 25..31 the core.

Registers (``registers.py``)
    ``Register`` (IntEnum of addresses), ``ticket_mask_bytes(difficulty)`` /
    ``ticket_mask_difficulty(value)``, ``version_mask_bytes(mask)`` /
    ``version_mask_from_bytes(value)``, ``misc_control_baud(value)``.

PLL (``pll.py``)
    ``find_pll(spec, mhz) -> PllSetting`` (``.frequency_mhz``, ``.vco_mhz``),
    ``encode_pll(spec, setting) -> 4 bytes`` / ``decode_pll(spec, value)``,
    ``frequency_range(spec)``, ``ramp_steps(start, target, step=6.25)``.

Hashing helpers (``midstate.py``)
    ``midstate_wire(first64)`` (BM1397 job form), ``words_from_wire(wire)``,
    ``next_version(v, mask)``, ``rolled_versions(v, mask, n)``; the SHA-256 state
    arithmetic itself (``midstate_words``, ``sha256_from_midstate``) is in
    ``drivers.sha256_state``.

A nonce is valid at ticket difficulty D (a power of two) when the double SHA-256 of the
header, read as a little-endian integer, is below ``2**224 // D`` (see
:func:`drivers.asic.verify.ticket_target`).

Errors: ``drivers.asic.errors`` (``FramingError``, ``ConfigError``, ...).
"""

from __future__ import annotations

from . import bm1366, bm1368, bm1370, bm1397
from .chips import CHIPS, ChipSpec, JobFormat, get_chip
from .crc import crc5, crc16
from .frames import (
    CommandDecoder,
    CommandFrame,
    HeaderJob,
    JobFrame,
    MidstateJob,
    NonceReply,
    RegisterReply,
    ReplyDecoder,
    nonce_reply,
    parse_command,
    parse_reply,
    register_reply,
)
from .registers import Register

__all__ = [
    "CHIPS",
    "ChipSpec",
    "CommandDecoder",
    "CommandFrame",
    "HeaderJob",
    "JobFormat",
    "JobFrame",
    "MidstateJob",
    "NonceReply",
    "Register",
    "RegisterReply",
    "ReplyDecoder",
    "bm1366",
    "bm1368",
    "bm1370",
    "bm1397",
    "crc5",
    "crc16",
    "get_chip",
    "nonce_reply",
    "parse_command",
    "parse_reply",
    "register_reply",
]

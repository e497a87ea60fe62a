"""A sans-IO chain of simulated BM13xx chips that answers the host like silicon does.

Feed it the bytes the host writes to the UART (:meth:`SimChain.feed`), pass time in
(:meth:`SimChain.advance`) and collect what the chips would send back
(:meth:`SimChain.take_output`). It implements, from the chip's side of the wire:

- command frames ``55 AA HDR LEN DATA CRC5``: register read/write to one chip or all,
  chain inactive, set address (taken by the first chip still waiting for one);
- job frames ``55 AA 21 LEN BODY CRC16`` in the BM1366/68/70 header format or the
  BM1397 midstate format;
- registers: chip id, PLL (-> frequency), ticket mask, misc control / fast UART
  (-> UART baud), version mask, hash and error counters;
- real double-SHA-256 search over the work given: every nonce reported solves the
  header at the ticket difficulty, carries the chip address and core id in its bits,
  the rolled version bits (BM136x/1370) or the midstate index (BM1397).

Two settings exist only in simulation and are named so:

``hashrate_hps``
    Real hashes per second of wall-clock time for the whole chain (a CPU budget).
    Chips share it in proportion to their modelled speed (frequency x small cores).
``sim_ticket_difficulty``
    When set, the difficulty chips report nonces at, overriding the ticket-mask register.
    Values below 1 make a CPU-speed chain produce shares at a useful rate.

The counter registers (0x8C total, 0x88-0x8B domains, 0x4C errors, BM1397 0x04 rate)
follow the *modelled* hashrate (frequency x small cores), as the host reads on real
hardware, not the CPU budget.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from drivers.asic.bm13xx.crc import crc5, crc16
from drivers.asic.bm13xx.frames import CMD_PREAMBLE, REPLY_PREAMBLE, Header, reverse_words
from drivers.asic.bm13xx.registers import Register, misc_control_baud
from drivers.sim.errors import SimConfigError
from drivers.sim.faults import FaultState, drop_bytes
from drivers.sim.hasher import NONCES_PER_CORE, HeaderScanner, MidstateScanner
from drivers.sim.models import REF_CLOCK_MHZ, SimChipModel, get_model
from protocols.stratum_v1.work import difficulty_to_target

log = logging.getLogger(__name__)


# Register map is the driver's: the chip and its driver must agree on it. The simulated
# chips give meaning to CHIP_ID, HASH_RATE, PLL0, TICKET_MASK, MISC_CONTROL, FAST_UART, the
# counters and VERSION_ROLLING; other registers are stored and read back.
ChipReg = Register


MISC_CONTROL_DEFAULT = 0x00007A31
"""Register 0x18 after reset: UART divider 26 -> 115,740 baud."""

FAST_UART_RATES = {0x11300200: 1_000_000}
"""Register 0x28 values with a known UART rate (BM136x/1370). Any other non-zero value
puts the UART at a rate no host will match, as an unknown setting would on silicon."""

UNKNOWN_BAUD = 1
COUNTER_UNIT = float(1 << 32)
NONCE_CHUNK = 2048
"""Nonces hashed per version (or midstate) before the chip moves to the next one."""
RX_FRAME_TIMEOUT_S = 0.05
"""An incomplete host frame older than this is discarded, as the UART's idle timeout does."""
MAX_CATCHUP_S = 0.25
"""At most this much wall-clock time of hash budget is spent in one advance()."""

_READ_ONLY_REGS = (ChipReg.CHIP_ID,)


def pll_frequency(model: SimChipModel, value: int) -> float:
    """Register 0x08 value (vdo, fbdiv, refdiv, postdiv) -> hashing clock in MHz."""
    fbdiv = (value >> 16) & 0xFF
    refdiv = (value >> 8) & 0xFF
    post = value & 0xFF
    p1, p2 = post >> 4, post & 0x0F
    if model.postdiv_minus_one:
        p1, p2 = p1 + 1, p2 + 1
    if refdiv == 0 or p1 == 0 or p2 == 0:
        return 0.0
    return REF_CLOCK_MHZ * fbdiv / (refdiv * p1 * p2)


def pll_value(model: SimChipModel, mhz: float) -> int:
    """A register 0x08 value giving (close to) ``mhz``; used for power-on defaults."""
    best: tuple[float, int] | None = None
    for refdiv in (2, 1):
        for p1 in range(7, 0, -1):
            for p2 in range(p1, 0, -1):
                fbdiv = round(mhz * refdiv * p1 * p2 / REF_CLOCK_MHZ)
                if not 0 < fbdiv < 256:
                    continue
                vco = REF_CLOCK_MHZ * fbdiv / refdiv
                if model.postdiv_minus_one:
                    vdo = 0x50 if vco >= 2400 else 0x40
                    post = ((p1 - 1) << 4) | (p2 - 1)
                else:
                    vdo, post = 0x40, (p1 << 4) | p2
                value = (vdo << 24) | (fbdiv << 16) | (refdiv << 8) | post
                err = abs(pll_frequency(model, value) - mhz)
                if best is None or err < best[0]:
                    best = (err, value)
    assert best is not None
    return best[1]


def ticket_mask_difficulty(value: int) -> int:
    """Register 0x14 -> ticket difficulty: each byte is bit-reversed, mask = difficulty - 1."""
    mask = 0
    for shift in (24, 16, 8, 0):
        byte = (value >> shift) & 0xFF
        mask = (mask << 8) | int(f"{byte:08b}"[::-1], 2)
    return mask + 1


def reply_crc_byte(body: bytes, flags: int) -> int:
    """Last reply byte: ``flags`` in bits 5-7 (bit 7 = nonce) and the CRC5 in bits 0-4.

    The CRC covers every bit before it, flag bits included, so ``crc5(frame[2:]) == 0``
    holds for a valid frame, which is how hosts check replies.
    """
    crc = crc5(body)
    for bit in (7, 6, 5):
        feedback = ((crc >> 4) & 1) ^ ((flags >> bit) & 1)
        crc = ((crc << 1) & 0x1F) ^ (0x05 if feedback else 0)
    return (flags & 0xE0) | crc


def scatter_bits(index: int, mask: int) -> int:
    """Deposit the low bits of ``index`` into the set bit positions of ``mask``."""
    out, bit = 0, 0
    while mask:
        low = mask & -mask
        if (index >> bit) & 1:
            out |= low
        mask ^= low
        bit += 1
    return out


@dataclass(slots=True)
class _Slot:
    """One variant of a job a chip scans: a rolled version or a BM1397 midstate."""

    index: int
    scanner: HeaderScanner | MidstateScanner
    version_bits: int  # rolled bits >> 13 as the reply carries them (0 for BM1397)


class _ChipJob:
    """The job a chip is working on and how far it got."""

    __slots__ = ("_slot", "cursor", "exhausted", "job_id", "n_slots", "slot_factory")

    def __init__(self, job_id: int, n_slots: int, slot_factory) -> None:
        self.job_id = job_id
        self.n_slots = n_slots
        self.slot_factory = slot_factory
        self.cursor = 0
        self.exhausted = False
        self._slot: _Slot | None = None

    def slot(self, index: int) -> _Slot:
        if self._slot is None or self._slot.index != index:
            self._slot = self.slot_factory(index)
        return self._slot


@dataclass(frozen=True, slots=True)
class JobWork:
    """A job as the chips decoded it (also handy for tests and status)."""

    job_id: int
    num_midstates: int
    starting_nonce: int
    nbits: int
    ntime: int
    version: int | None  # BM136x/1370 only
    prev_hash: bytes | None  # header byte order
    merkle_root: bytes | None  # header byte order
    merkle_tail: bytes  # header bytes 64..68 (last 4 merkle bytes)
    midstates: tuple[tuple[int, ...], ...]  # BM1397 only


def decode_job(model: SimChipModel, body: bytes) -> JobWork:
    """Decode a job frame body (between LEN and CRC16) the way the chip reads it."""
    job_id, nms = body[0], body[1]
    start = int.from_bytes(body[2:6], "little")
    nbits = int.from_bytes(body[6:10], "little")
    ntime = int.from_bytes(body[10:14], "little")
    if model.job_body_len == 82:
        merkle = reverse_words(body[14:46])
        prev = reverse_words(body[46:78])
        version = int.from_bytes(body[78:82], "little")
        return JobWork(job_id, nms, start, nbits, ntime, version, prev, merkle, merkle[28:], ())
    midstates = []
    for i in range(max(1, min(nms, 4))):
        wire = body[18 + 32 * i : 50 + 32 * i]
        words = [int.from_bytes(wire[j : j + 4], "big") for j in range(0, 32, 4)]
        midstates.append(tuple(reversed(words)))
    return JobWork(
        job_id, nms, start, nbits, ntime, None, None, None, bytes(body[14:18]), tuple(midstates)
    )


class SimChip:
    """One chip: registers, address, current job and its hashing cursor."""

    def __init__(self, model: SimChipModel, index: int) -> None:
        self.model = model
        self.index = index
        self.error_rate = 0.0  # hardware-error probability per reported nonce (physics)
        self.reset()

    def reset(self) -> None:
        """Power-on state: address 0, default registers, default baud, no job."""
        self.address = 0
        self.awaiting_address = False
        m = self.model
        self.registers: dict[int, int] = {
            ChipReg.CHIP_ID: m.chip_id << 16,
            ChipReg.PLL0: pll_value(m, m.default_mhz),
            ChipReg.TICKET_MASK: 0,
            ChipReg.MISC_CONTROL: MISC_CONTROL_DEFAULT,
            ChipReg.FAST_UART: 0,
            ChipReg.VERSION_ROLLING: 0,
        }
        self.modelled_hashes = 0.0
        self.modelled_errors = 0.0
        self.job: _ChipJob | None = None
        self.hash_credit = 0.0
        self.real_hashes = 0
        self.nonces_found = 0
        self.hw_errors_emitted = 0

    # -- registers ----------------------------------------------------------------------
    @property
    def frequency_mhz(self) -> float:
        return pll_frequency(self.model, self.registers[ChipReg.PLL0])

    @property
    def baud(self) -> int:
        fast = self.registers.get(ChipReg.FAST_UART, 0)
        if self.model.rolls_version and fast:
            return FAST_UART_RATES.get(fast, UNKNOWN_BAUD)
        return misc_control_baud(self.registers[ChipReg.MISC_CONTROL])

    @property
    def ticket_difficulty(self) -> int:
        return ticket_mask_difficulty(self.registers[ChipReg.TICKET_MASK])

    @property
    def version_mask(self) -> int:
        if not self.model.rolls_version:
            return 0
        return (self.registers[ChipReg.VERSION_ROLLING] & 0xFFFF) << 13

    @property
    def modelled_hashrate(self) -> float:
        """H/s the modelled silicon does at its current clock."""
        return self.frequency_mhz * 1e6 * self.model.small_cores

    def read_register(self, reg: int) -> int:
        counters = int(self.modelled_hashes / COUNTER_UNIT)
        if reg == ChipReg.TOTAL_COUNTER:
            return counters & 0xFFFFFFFF
        if ChipReg.DOMAIN0_COUNTER <= reg <= ChipReg.DOMAIN3_COUNTER:
            return int(self.modelled_hashes / 4 / COUNTER_UNIT) & 0xFFFFFFFF
        if reg == ChipReg.ERROR_COUNTER:
            return int(self.modelled_errors) & 0xFFFFFFFF
        if reg == ChipReg.HASH_RATE and not self.model.rolls_version:
            return min(0xFFFFFFFF, int(self.modelled_hashrate / (1 << 20))) if self.job else 0
        return self.registers.get(reg, 0)

    def write_register(self, reg: int, value: int) -> None:
        if reg in _READ_ONLY_REGS:
            return
        self.registers[reg] = value & 0xFFFFFFFF

    # -- work ---------------------------------------------------------------------------
    def start_job(self, work: JobWork) -> None:
        """Replace the current job; a chip works on the newest job it was sent."""
        if work.midstates:
            tail12 = work.merkle_tail + work.ntime.to_bytes(4, "little")
            tail12 += work.nbits.to_bytes(4, "little")
            states = work.midstates

            def midstate_slot(i: int) -> _Slot:
                return _Slot(i, MidstateScanner(states[i], tail12), 0)

            self.job = _ChipJob(work.job_id, len(states), midstate_slot)
            return
        assert work.prev_hash is not None and work.merkle_root is not None
        assert work.version is not None
        mask = self.version_mask
        n_slots = 1 << bin(mask).count("1") if mask else 1
        head = work.prev_hash + work.merkle_root[:28]
        tail12 = work.merkle_root[28:] + work.ntime.to_bytes(4, "little")
        tail12 += work.nbits.to_bytes(4, "little")
        version = work.version

        def version_slot(i: int) -> _Slot:
            rolled = scatter_bits(i, mask)
            first64 = ((version | rolled) & 0xFFFFFFFF).to_bytes(4, "little") + head
            return _Slot(i, HeaderScanner(first64, tail12), rolled >> 13)

        self.job = _ChipJob(work.job_id, n_slots, version_slot)

    def search(self, budget: int, target: int) -> list[tuple[int, _Slot, int]]:
        """Hash up to ``budget`` nonces of the current job; return (nonce, slot, job id) hits."""
        job = self.job
        if job is None or job.exhausted or budget <= 0:
            return []
        cores = self.model.nonce_cores
        space = cores * NONCES_PER_CORE
        hits: list[tuple[int, _Slot, int]] = []
        while budget > 0:
            chunk, within = divmod(job.cursor, NONCE_CHUNK)
            slot_index = chunk % job.n_slots
            start = (chunk // job.n_slots) * NONCE_CHUNK + within
            if start >= space:
                job.exhausted = True
                break
            count = min(budget, NONCE_CHUNK - within, space - start)
            slot = job.slot(slot_index)
            for nonce in slot.scanner.scan(start, count, cores, self.address, target):
                hits.append((nonce, slot, job.job_id))
            job.cursor += count
            budget -= count
            self.real_hashes += count
        return hits


@dataclass(slots=True)
class ChainStats:
    """Counters of what the chain saw and did (simulation bookkeeping, not chip registers)."""

    frames_rx: int = 0
    jobs_rx: int = 0
    crc_errors_rx: int = 0
    garbage_bytes_rx: int = 0
    replies_tx: int = 0
    nonces_tx: int = 0
    hw_errors_tx: int = 0
    corrupted_tx: int = 0
    bytes_dropped_tx: int = 0
    real_hashes: int = 0


class SimChain:
    """N simulated chips on one UART, sans-IO: bytes and time in, bytes out."""

    def __init__(
        self,
        model: str,
        n_chips: int,
        *,
        hashrate_hps: float = 100_000.0,
        sim_ticket_difficulty: float | None = None,
        faults: FaultState | None = None,
        seed: int | None = 0,
    ) -> None:
        if not 1 <= n_chips <= 256:
            raise SimConfigError(f"a chain holds 1..256 chips, got {n_chips}")
        if hashrate_hps < 0:
            raise SimConfigError("hashrate_hps must be >= 0")
        if sim_ticket_difficulty is not None and sim_ticket_difficulty <= 0:
            raise SimConfigError("sim_ticket_difficulty must be > 0")
        self.model = get_model(model)
        self.chips = [SimChip(self.model, i) for i in range(n_chips)]
        self.hashrate_hps = float(hashrate_hps)
        self.sim_ticket_difficulty = sim_ticket_difficulty
        self.faults = faults if faults is not None else FaultState()
        self.stats = ChainStats()
        self.powered = True
        self._rng = random.Random(seed)
        self._rx = bytearray()
        self._tx = bytearray()
        self._last: float | None = None
        self._rx_since: float | None = None
        self._credit = 0.0
        self._frame_len_job = self.model.job_body_len + 4

    # -- host side API ------------------------------------------------------------------
    @property
    def baud(self) -> int:
        """The UART rate the chain talks at (the first chip's; all follow broadcasts)."""
        return self.chips[0].baud

    def feed(self, data: bytes) -> None:
        """Bytes the host sent on the UART."""
        if not self.powered:
            return
        self._rx += data
        self._parse()

    def take_output(self) -> bytes:
        """Bytes the chips sent since the last call (UART faults applied)."""
        out = bytes(self._tx)
        self._tx.clear()
        out, dropped = drop_bytes(out, self.faults.byte_drop_rate, self._rng)
        self.stats.bytes_dropped_tx += dropped
        return out

    def advance(self, now: float, max_hashes: int | None = None) -> None:
        """Let time pass: count modelled hashes and spend the real hash budget.

        ``max_hashes`` bounds the work of this call (the runner sizes it so a step stays
        short); budget beyond it is dropped, not owed, so the chain never falls behind.
        """
        self._expire_partial_frame(now)
        if self._last is None:
            self._last = now
            return
        dt = now - self._last
        if dt <= 0:
            return
        self._last = now
        if not self.powered:
            self._credit = 0.0
            return
        working = [c for c in self._live_chips() if c.job is not None and not c.job.exhausted]
        for chip in working:
            modelled = chip.modelled_hashrate * dt
            chip.modelled_hashes += modelled
            chip.modelled_errors += modelled / COUNTER_UNIT * chip.error_rate
        weights = [c.modelled_hashrate for c in working]
        total = sum(weights)
        if not working or total <= 0 or self.hashrate_hps <= 0:
            self._credit = 0.0
            return
        self._credit += min(dt, MAX_CATCHUP_S) * self.hashrate_hps
        budget = int(self._credit)
        self._credit -= budget
        if max_hashes is not None and budget > max_hashes:
            budget = max_hashes
        for chip, weight in zip(working, weights, strict=True):
            chip.hash_credit += budget * weight / total
            n = int(chip.hash_credit)
            chip.hash_credit -= n
            target = self._target_for(chip)
            for nonce, slot, job_id in chip.search(n, target):
                self._report_nonce(chip, nonce, slot, job_id)
            self.stats.real_hashes += n

    def reset(self) -> None:
        """What the reset line does: every chip back to power-on state, buffers cleared."""
        for chip in self.chips:
            chip.reset()
        self._rx.clear()
        self._tx.clear()
        self._credit = 0.0

    def set_powered(self, powered: bool) -> None:
        """Core supply on/off; chips come back from power-off in their reset state."""
        if powered and not self.powered:
            self.reset()
        if not powered:
            self._rx.clear()
            self._tx.clear()
        self.powered = powered

    def effective_ticket_difficulty(self, chip: SimChip) -> float:
        if self.sim_ticket_difficulty is not None:
            return self.sim_ticket_difficulty
        return float(chip.ticket_difficulty)

    # -- internals ----------------------------------------------------------------------
    def _expire_partial_frame(self, now: float) -> None:
        if not self._rx:
            self._rx_since = None
        elif self._rx_since is None:
            self._rx_since = now
        elif now - self._rx_since > RX_FRAME_TIMEOUT_S:
            self.stats.garbage_bytes_rx += len(self._rx)
            self._rx.clear()
            self._rx_since = None

    def _target_for(self, chip: SimChip) -> int:
        if self.sim_ticket_difficulty is not None:
            return difficulty_to_target(self.sim_ticket_difficulty)
        return difficulty_to_target(chip.ticket_difficulty)

    def _live_chips(self) -> list[SimChip]:
        dead = self.faults.dead_chips
        return [c for c in self.chips if c.index not in dead]

    def _parse(self) -> None:
        rx = self._rx
        while True:
            start = rx.find(CMD_PREAMBLE)
            if start < 0:
                keep = 1 if rx[-1:] == b"\x55" else 0
                self.stats.garbage_bytes_rx += len(rx) - keep
                del rx[: len(rx) - keep]
                return
            if start:
                self.stats.garbage_bytes_rx += start
                del rx[:start]
            if len(rx) < 4:
                return
            hdr, length = rx[2], rx[3]
            if hdr == Header.JOB:
                ok = length == self._frame_len_job
            elif hdr & 0xE0 == 0x40:
                ok = length in (5, 9)
            else:
                ok = False
            if not ok:
                self.stats.garbage_bytes_rx += 1
                del rx[:1]
                continue
            total = 2 + length
            if len(rx) < total:
                return
            frame = bytes(rx[:total])
            if self._frame_ok(frame):
                del rx[:total]
                self.stats.frames_rx += 1
                self._dispatch(frame)
            else:
                self.stats.crc_errors_rx += 1
                del rx[:2]

    @staticmethod
    def _frame_ok(frame: bytes) -> bool:
        if frame[2] == Header.JOB:
            return crc16(frame[2:-2]) == int.from_bytes(frame[-2:], "big")
        return crc5(frame[2:-1]) == frame[-1]

    def _dispatch(self, frame: bytes) -> None:
        hdr = frame[2]
        data = frame[4:-2] if hdr == Header.JOB else frame[4:-1]
        live = self._live_chips()
        if hdr == Header.JOB:
            self.stats.jobs_rx += 1
            work = decode_job(self.model, data)
            for chip in live:
                chip.start_job(work)
            return
        cmd, broadcast = hdr & 0x0F, bool(hdr & 0x10)
        addr = data[0]
        reg = data[1] if len(data) > 1 else 0
        if cmd == 3:  # chain inactive: every chip waits for a new address
            for chip in self.chips:
                chip.awaiting_address = True
        elif cmd == 0:  # set address: the first chip still waiting takes it
            for chip in live:
                if chip.awaiting_address:
                    chip.address = addr
                    chip.awaiting_address = False
                    break
        elif cmd == 1 and len(data) == 6:
            value = int.from_bytes(data[2:6], "big")
            for chip in live:
                if broadcast or chip.address == addr:
                    chip.write_register(reg, value)
        elif cmd == 2:
            for chip in live:
                if broadcast or chip.address == addr:
                    self._send_register(chip, reg)

    def _emit(self, body: bytes, flags: int) -> None:
        crc_byte = reply_crc_byte(body, flags)
        if self.faults.crc_error_rate and self._rng.random() < self.faults.crc_error_rate:
            crc_byte ^= 1 << self._rng.randrange(5)
            self.stats.corrupted_tx += 1
        self._tx += REPLY_PREAMBLE + body + bytes((crc_byte,))

    def _send_register(self, chip: SimChip, reg: int) -> None:
        body = chip.read_register(reg).to_bytes(4, "big") + bytes((chip.address, reg))
        if self.model.reply_len == 11:
            body += b"\x00\x00"
        self.stats.replies_tx += 1
        self._emit(body, 0x00)

    def _report_nonce(self, chip: SimChip, nonce: int, slot: _Slot, job_id: int) -> None:
        if chip.error_rate and self._rng.random() < chip.error_rate:
            # A marginal core returns a wrong nonce; address and core bits stay intact.
            nonce ^= 1 << self._rng.randrange(17)
            chip.hw_errors_emitted += 1
            self.stats.hw_errors_tx += 1
        chip.nonces_found += 1
        self.stats.nonces_tx += 1
        if self.model.rolls_version:
            sub = nonce & 0x0F  # small core that found it
            body = nonce.to_bytes(4, "big") + bytes((0, self.model.encode_reply_id(job_id, sub)))
            body += slot.version_bits.to_bytes(2, "big")
        else:
            reply_id = self.model.encode_reply_id(job_id, slot.index)
            body = nonce.to_bytes(4, "big") + bytes((slot.index, reply_id))
        self._emit(body, 0x80)

"""The miner-facing ASIC driver: one object per UART chain of BM13xx chips.

``AsicDriver(transport, chip_model, clock)`` runs the whole life of a chain: reset,
enumeration, addressing, register setup, PLL ramp, baud switch (host and chips in step),
then jobs out and verified nonces back. It is synchronous and owns no thread: the mining
daemon calls :meth:`AsicDriver.service` in a loop (or from a worker thread under asyncio);
``clock`` and ``sleep`` are injected so tests run on fake time.

Every nonce is re-hashed on the host. One that does not meet the ticket target is a
hardware error of the chip whose address it carries; one for a job id no longer in flight
is stale (not the chip's fault). Chips that stop answering counter reads are reported and
the chain is re-initialised.

:meth:`AsicDriver.service` never lets a vanished device end the mining loop: on
``DeviceGone`` (serial or USB unplug) it counts the loss, then on each later call waits
up to ``replug_wait_s`` for the transport to ``reopen()``, re-initialises the chain and
resends the last job. A re-initialisation that finds no chips is retried every
``reinit_retry_s`` instead of leaving the chain stuck.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.asic.bm13xx import frames
from drivers.asic.bm13xx.chips import ChipSpec, JobFormat, RegisterWrite, get_chip
from drivers.asic.bm13xx.frames import NonceReply, RegisterReply, ReplyDecoder
from drivers.asic.bm13xx.midstate import midstate_wire, rolled_versions
from drivers.asic.bm13xx.pll import (
    RAMP_INTERVAL_S,
    RAMP_START_MHZ,
    encode_pll,
    find_pll,
    ramp_steps,
)
from drivers.asic.bm13xx.registers import (
    Register,
    power_of_two_floor,
    ticket_mask_bytes,
    version_mask_bytes,
)
from drivers.transport.base import DeviceGone, Reopenable, Transport

from .chain import Chain, ChipState
from .errors import ChipTimeoutError, ConfigError, EnumerationError
from .job import BIP320_MASK, MiningJob
from .scheduler import JobScheduler
from .verify import HeaderHasher, hash_difficulty, ticket_target

log = logging.getLogger(__name__)

DEFAULT_TICKET_DIFFICULTY = 256
BAUD_SETTLE_S = 0.05
"""Pause between telling the chips the new baud and switching the host: the command must
be on the wire (and applied) at the old rate before the host's UART changes speed."""
_DEDUP_PER_JOB = 4096


@dataclass(frozen=True, slots=True)
class VerifiedNonce:
    """A nonce the host re-hashed and found valid at the ticket difficulty."""

    job: MiningJob
    nonce: int
    version: int
    chip_index: int
    core_id: int
    sub: int
    hash: bytes  # internal byte order
    difficulty: float
    meets_share_target: bool
    is_block: bool

    def header(self) -> bytes:
        return self.job.header(self.nonce, self.version)


@dataclass(slots=True)
class _ActiveJob:
    chip_job_id: int
    job: MiningJob
    versions: tuple[int, ...]  # BM1397: version of each midstate slot
    mask: int  # version bits the chips may roll for this job
    hasher: HeaderHasher
    share_target: int = 0
    network_target: int = 0
    seen: set[tuple[int, int]] = field(default_factory=set)


@dataclass(slots=True)
class DriverCounters:
    jobs_sent: int = 0
    clean_jobs: int = 0
    nonces_valid: int = 0
    hw_errors: int = 0
    stale_nonces: int = 0
    duplicate_nonces: int = 0
    reinits: int = 0
    failed_reinits: int = 0
    silent_chip_events: int = 0
    device_lost: int = 0  # unplug / power loss seen on the transport
    device_recovered: int = 0  # ... and the transport reopened afterwards


@dataclass(frozen=True, slots=True)
class HealthReport:
    silent_chips: tuple[int, ...]
    reinitialised: bool
    chips_after: int


class AsicDriver:
    """Drive one chain of ``chip_model`` chips over ``transport``."""

    def __init__(
        self,
        transport: Transport,
        chip_model: str | ChipSpec,
        clock: Callable[[], float] = time.monotonic,
        *,
        sleep: Callable[[float], None] = time.sleep,
        ticket_difficulty: int = DEFAULT_TICKET_DIFFICULTY,
        frequency_mhz: float | None = None,
        enum_timeout: float = 1.0,
        counter_interval: float = 5.0,
        silence_timeout: float = 30.0,
        switch_baud: bool = True,
        verify_difficulty: float | None = None,
        replug_wait_s: float = 1.0,
        reinit_retry_s: float = 2.0,
    ) -> None:
        self.transport = transport
        self.spec = chip_model if isinstance(chip_model, ChipSpec) else get_chip(chip_model)
        self.clock = clock
        self.sleep = sleep
        self.ticket_difficulty = power_of_two_floor(ticket_difficulty)
        self.frequency_mhz = frequency_mhz or self.spec.default_mhz
        self.enum_timeout = enum_timeout
        self.counter_interval = counter_interval
        self.silence_timeout = silence_timeout
        self.switch_baud = switch_baud
        self.decoder = ReplyDecoder(self.spec)
        self.scheduler = JobScheduler(clock)
        self.counters = DriverCounters()
        self.chain: Chain | None = None
        self.baud = self.spec.default_baud
        self.version_mask = 0
        self._jobs: dict[int, _ActiveJob] = {}
        self._job_id = 0
        self._last_job: MiningJob | None = None
        self._last_counter_request: float | None = None
        self._pending: list[VerifiedNonce] = []  # nonces collected while reading registers
        self._register_replies: list[RegisterReply] | None = None
        self.last_health: HealthReport | None = None
        self.verify_difficulty = verify_difficulty
        self.replug_wait_s = replug_wait_s
        self.reinit_retry_s = reinit_retry_s
        self.device_gone: DeviceGone | None = None  # set while the device is away
        self._reinit_due: float | None = None  # a failed re-init is retried at this time
        self._baud_unknown = False  # after a reopen the host side is back at its initial baud
        self._update_ticket()

    def _update_ticket(self) -> None:
        # A simulated chain may report nonces below the lowest difficulty a ticket mask can
        # express (so a CPU-speed chain still produces some); verify_difficulty says so.
        difficulty = self.verify_difficulty or self.ticket_difficulty
        self.nonce_difficulty = difficulty
        self._ticket = ticket_target(difficulty)

    # ------------------------------------------------------------------ low-level helpers
    def _write(self, frame: bytes) -> None:
        self.transport.write(frame)

    def _write_register(self, register: int, value: bytes, chip: int | None = None) -> None:
        self._write(frames.write_register(register, value, chip))

    def _apply_writes(self, writes: tuple[RegisterWrite, ...], addresses: list[int]) -> None:
        for w in writes:
            if w.per_chip:
                for addr in addresses:
                    self._write_register(w.register, w.value, addr)
            else:
                self._write_register(w.register, w.value)

    # ------------------------------------------------------------------------- bring-up
    def init(self, chip_count_expected: int | None = None) -> Chain:
        """Reset and bring up the chain; returns it. Raises EnumerationError."""
        spec = self.spec
        self._jobs.clear()
        self.decoder.reset()
        if self.baud != spec.default_baud or self.chain is None or self._baud_unknown:
            self.transport.set_baud(spec.default_baud)
            self.baud = spec.default_baud
            self._baud_unknown = False
        self.transport.reset_chips()
        self._drain()

        if spec.rolls_version:
            for _ in range(3):
                self._write_register(Register.VERSION_ROLLING, version_mask_bytes(BIP320_MASK))
        count = self._enumerate()
        if chip_count_expected is not None and count < chip_count_expected:
            raise EnumerationError(
                f"{spec.model}: found {count} chips, expected {chip_count_expected}; "
                "check power and the reset line"
            )
        if chip_count_expected is not None and count > chip_count_expected:
            log.warning("found %d chips, more than the %d expected", count, chip_count_expected)

        now = self.clock()
        chain = Chain(spec, count, now)
        addresses = [c.address for c in chain.chips]
        if spec.rolls_version:
            self._write_register(Register.VERSION_ROLLING, version_mask_bytes(BIP320_MASK))
            self.version_mask = BIP320_MASK
        self._apply_writes(spec.pre_address_writes, addresses)
        self._write(frames.chain_inactive())
        for addr in addresses:
            self._write(frames.set_address(addr))
        self._apply_writes(spec.post_address_writes, addresses)
        self._write_register(Register.TICKET_MASK, ticket_mask_bytes(self.ticket_difficulty))

        self.chain = chain
        self._ramp(RAMP_START_MHZ, self.frequency_mhz, first=True)
        self._apply_writes(spec.post_pll_writes, addresses)
        if self.switch_baud:
            self._write_register(spec.fast_baud_register, spec.fast_baud_value)
            self.sleep(BAUD_SETTLE_S)
            self.transport.set_baud(spec.fast_baud)
            self.baud = spec.fast_baud
        self._configure_scheduler()
        self._last_counter_request = None
        log.info(
            "%s chain up: %d chips at %.2f MHz, %d baud",
            spec.model,
            count,
            self.frequency_mhz,
            self.baud,
        )
        return chain

    def _drain(self) -> None:
        while self.transport.read(0.0):
            pass

    def _enumerate(self) -> int:
        """Broadcast a chip-id read and count the chips that answer with our id."""
        self._write(frames.read_register(Register.CHIP_ID))
        count = 0
        while True:
            data = self.transport.read(self.enum_timeout)
            if not data:
                break
            for reply in self.decoder.feed(data):
                if not isinstance(reply, RegisterReply) or reply.register != Register.CHIP_ID:
                    continue
                chip_id = reply.value >> 16
                if chip_id != self.spec.chip_id:
                    raise EnumerationError(
                        f"chip answered id {chip_id:#06x}, expected {self.spec.chip_id:#06x} "
                        f"({self.spec.model}); is the board definition right?"
                    )
                count += 1
        if count == 0:
            raise EnumerationError(
                f"no {self.spec.model} answered the chip-id read; check power, reset and baud"
            )
        return count

    # ------------------------------------------------------------------------ settings
    def _ramp(self, start: float, target: float, first: bool = False) -> None:
        find_pll(self.spec, target)  # validate before touching the chips
        steps = ([start] if first else []) + ramp_steps(start, target)
        for i, mhz in enumerate(steps):
            if i:
                self.sleep(RAMP_INTERVAL_S)
            self._write_register(Register.PLL0, encode_pll(self.spec, find_pll(self.spec, mhz)))
        self.frequency_mhz = target
        if self.chain:
            for chip in self.chain.chips:
                chip.frequency_mhz = target
        self._configure_scheduler()

    def set_frequency(self, mhz: float) -> None:
        """Ramp every chip to ``mhz`` in 6.25 MHz steps, 100 ms apart."""
        if self.chain is None:
            raise ConfigError("init() the chain before setting its frequency")
        if abs(mhz - self.frequency_mhz) < 1e-9:
            return
        self._ramp(self.frequency_mhz, mhz)

    def set_ticket_difficulty(self, difficulty: int) -> None:
        self.ticket_difficulty = power_of_two_floor(difficulty)
        self._update_ticket()
        self._write_register(Register.TICKET_MASK, ticket_mask_bytes(self.ticket_difficulty))

    def _set_version_mask(self, mask: int) -> None:
        if self.spec.rolls_version and mask != self.version_mask:
            self._write_register(Register.VERSION_ROLLING, version_mask_bytes(mask))
            self.version_mask = mask

    def _configure_scheduler(self) -> None:
        chips = len(self.chain) if self.chain else 1
        hashrate = self.spec.expected_hashrate(self.frequency_mhz, chips)
        if self.spec.job_format is JobFormat.MIDSTATE:
            versions = self.spec.max_midstates
            frame_len = frames.MIDSTATE_JOB_BODY_LEN + 6
        else:
            versions = 1 << bin(self.version_mask).count("1")
            frame_len = frames.HEADER_JOB_BODY_LEN + 6
        self.scheduler.configure(hashrate, versions, frame_len, self.baud)

    # ---------------------------------------------------------------------------- jobs
    def encode_job(self, job: MiningJob, chip_job_id: int) -> tuple[bytes, _ActiveJob]:
        """Job frame bytes for ``job`` under ``chip_job_id`` and the record to verify it."""
        mask = job.rollable_mask
        if self.spec.job_format is JobFormat.HEADER:
            frame = frames.HeaderJob(
                chip_job_id, job.version, job.prev_hash, job.merkle_root, job.ntime, job.nbits
            ).frame()
            versions: tuple[int, ...] = (job.version,)
        else:
            count = self.spec.max_midstates if mask else 1
            versions = rolled_versions(job.version, mask, count)
            head = job.prev_hash + job.merkle_root[:28]
            mids = tuple(midstate_wire(struct.pack("<I", v) + head) for v in versions)
            frame = frames.MidstateJob(
                chip_job_id, mids, job.merkle_root[28:], job.ntime, job.nbits
            ).frame()
        active = _ActiveJob(
            chip_job_id,
            job,
            versions,
            mask,
            HeaderHasher(job),
            job.share_target(),
            job.network_target(),
        )
        return frame, active

    def send_job(self, job: MiningJob, clean: bool = False) -> int:
        """Send ``job`` to every chip; ``clean`` forgets all older jobs first."""
        if self.chain is None:
            raise ConfigError("init() the chain before sending jobs")
        self._job_id = self.spec.next_job_id(self._job_id)
        frame, active = self.encode_job(job, self._job_id)
        if clean:
            self._jobs.clear()
            self.counters.clean_jobs += 1
        self._set_version_mask(active.mask if self.spec.rolls_version else 0)
        self._jobs[self._job_id] = active
        self._write(frame)
        self.scheduler.mark_sent()
        self.counters.jobs_sent += 1
        self._last_job = job
        return self._job_id

    def new_block(self, job: MiningJob) -> int:
        """A new block: old work is worthless, the clean job goes out at once."""
        return self.send_job(job, clean=True)

    # --------------------------------------------------------------------------- replies
    def request_counters(self) -> None:
        """Broadcast reads of the hash (and error) counters; every live chip answers."""
        self._write(frames.read_register(self.spec.hash_counter_register))
        if not self.spec.counter_is_rate:
            self._write(frames.read_register(Register.ERROR_COUNTER))
        self._last_counter_request = self.clock()

    def read_register(
        self, register: int, chip_index: int | None = None, timeout: float = 0.5
    ) -> dict[int, int]:
        """Read ``register`` from one chip or all; returns {chip index: value}.

        Waits until every asked chip answered or ``timeout`` passed (then raises
        ChipTimeoutError if nobody answered). Nonces arriving meanwhile are kept for the
        next :meth:`poll`.
        """
        if self.chain is None:
            raise ConfigError("init() the chain before reading registers")
        chips = self.chain.chips if chip_index is None else [self.chain.chips[chip_index]]
        address = None if chip_index is None else chips[0].address
        self._register_replies = []
        answers: dict[int, int] = {}
        try:
            self._write(frames.read_register(register, address))
            deadline = time.monotonic() + timeout
            while len(answers) < len(chips):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                data = self.transport.read(min(left, 0.05))
                if data:
                    self._handle(self.decoder.feed(data), self._pending)
                for reply in self._register_replies:
                    if reply.register == register:
                        chip = self.chain.chip_for_address(reply.chip_address)
                        if chip in chips and chip.address == reply.chip_address:
                            answers[chip.index] = reply.value
                self._register_replies.clear()
        finally:
            self._register_replies = None
        if not answers:
            raise ChipTimeoutError(f"no chip answered a read of register {register:#04x}")
        return answers

    def poll(self, timeout: float = 0.0) -> list[VerifiedNonce]:
        """Read what arrived (waiting up to ``timeout``), return the verified nonces."""
        out, self._pending = self._pending, []
        if out:
            timeout = 0.0
        data = self.transport.read(timeout)
        while data:
            self._handle(self.decoder.feed(data), out)
            data = self.transport.read(0.0)
        return out

    def feed(self, data: bytes) -> list[VerifiedNonce]:
        """Process bytes read elsewhere (an asyncio reader); same result as :meth:`poll`."""
        out: list[VerifiedNonce] = []
        self._handle(self.decoder.feed(data), out)
        return out

    def _handle(self, replies: list[frames.Reply], out: list[VerifiedNonce]) -> None:
        chain = self.chain
        if chain is None:
            return
        now = self.clock()
        for reply in replies:
            if isinstance(reply, NonceReply):
                verified = self._verify(chain, reply, now)
                if verified is not None:
                    out.append(verified)
            else:
                chain.record_register(reply, now)
                if self._register_replies is not None:
                    self._register_replies.append(reply)

    def _verify(self, chain: Chain, reply: NonceReply, now: float) -> VerifiedNonce | None:
        chip = chain.chip_for_address(reply.chip_address)
        active = self._jobs.get(reply.job_id)
        if active is None:
            chip.last_seen = now
            self.counters.stale_nonces += 1
            return None
        version = self._reply_version(active, reply)
        if version is None:
            return self._hw_error(chain, chip, now)
        key = (reply.nonce, version)
        if key in active.seen:
            chip.duplicates += 1
            self.counters.duplicate_nonces += 1
            return None
        digest = active.hasher.hash(version, reply.nonce)
        value = int.from_bytes(digest, "little")
        if value >= self._ticket:
            return self._hw_error(chain, chip, now)
        if len(active.seen) < _DEDUP_PER_JOB:
            active.seen.add(key)
        chain.record_nonce(chip, now, True, self.nonce_difficulty)
        self.counters.nonces_valid += 1
        job = active.job
        return VerifiedNonce(
            job=job,
            nonce=reply.nonce,
            version=version,
            chip_index=chip.index,
            core_id=reply.core_id,
            sub=reply.sub,
            hash=digest,
            difficulty=hash_difficulty(value),
            meets_share_target=value <= active.share_target,
            is_block=value <= active.network_target,
        )

    def _reply_version(self, active: _ActiveJob, reply: NonceReply) -> int | None:
        if self.spec.job_format is JobFormat.MIDSTATE:
            if reply.sub >= len(active.versions):
                return None
            return active.versions[reply.sub]
        if reply.version_bits & ~active.mask:
            return None  # rolled bits the job does not allow: the chip (or the wire) erred
        return active.job.version | reply.version_bits

    def _hw_error(self, chain: Chain, chip: ChipState, now: float) -> None:
        chain.record_nonce(chip, now, False, self.nonce_difficulty)
        self.counters.hw_errors += 1
        return None

    # ------------------------------------------------------------------------ main loop
    def service(
        self, job_source: Callable[[], MiningJob | None] | None = None, timeout: float = 0.01
    ) -> list[VerifiedNonce]:
        """One iteration of the mining loop: feed jobs, read counters, collect nonces.

        Survives the device going away: returns ``[]`` while it is gone (waiting up to
        ``replug_wait_s`` per call for it) and resumes mining once it is back.
        """
        try:
            if self.device_gone is not None and not self._recover_device():
                return []
            if self._reinit_due is not None:
                if self.clock() < self._reinit_due:
                    self.sleep(min(timeout, self._reinit_due - self.clock()))
                    return []
                self.reinit(self.last_health.silent_chips if self.last_health else ())
                if self.chain is None:
                    return []
            return self._service(job_source, timeout)
        except DeviceGone as exc:
            self._lost_device(exc)
            return []

    def _lost_device(self, exc: DeviceGone) -> None:
        if self.device_gone is None:
            self.counters.device_lost += 1
            log.warning("%s chain lost its device (%s); waiting for it", self.spec.model, exc)
        if not isinstance(self.transport, Reopenable):
            raise exc  # nothing here can bring it back: the caller must
        self.device_gone = exc

    def _recover_device(self) -> bool:
        """Reopen the transport and re-initialise the chain; False while still away."""
        assert isinstance(self.transport, Reopenable)
        try:
            self.transport.reopen(wait_s=self.replug_wait_s)
        except DeviceGone as exc:
            self.device_gone = exc
            return False
        self.device_gone = None
        self.counters.device_recovered += 1
        self._baud_unknown = True
        log.warning("%s chain: device is back, re-initialising", self.spec.model)
        report = self.reinit()
        return report.reinitialised

    def _service(
        self, job_source: Callable[[], MiningJob | None] | None, timeout: float
    ) -> list[VerifiedNonce]:
        now = self.clock()
        if job_source is not None and self.scheduler.due(now):
            job = job_source()
            if job is not None:
                self.send_job(job)
        if (
            self._last_counter_request is None
            or now - self._last_counter_request >= self.counter_interval
        ):
            self.request_counters()
        nonces = self.poll(min(timeout, self.scheduler.time_until_due(now) or timeout))
        self.check_health()
        return nonces

    def check_health(self) -> HealthReport | None:
        """Report chips silent for ``silence_timeout`` and re-initialise the chain."""
        if self.chain is None:
            return None
        now = self.clock()
        silent = self.chain.silent_chips(now, self.silence_timeout)
        if not silent:
            return None
        indices = tuple(c.index for c in silent)
        self.counters.silent_chip_events += 1
        log.warning(
            "chips %s silent for %.0f s; re-initialising the chain", indices, self.silence_timeout
        )
        return self.reinit(indices)

    def reinit(self, silent: tuple[int, ...] = ()) -> HealthReport:
        """Re-run the bring-up and resend the last job; returns what was found.

        If no chip answers, the chain is dropped and :meth:`service` tries again every
        ``reinit_retry_s`` (chips still booting, power stage not back yet).
        """
        self.counters.reinits += 1
        before = len(self.chain) if self.chain else 0
        try:
            chain = self.init()
        except EnumerationError as exc:
            log.error("re-initialisation failed: %s; retrying in %.1f s", exc, self.reinit_retry_s)
            self.counters.failed_reinits += 1
            self.chain = None
            self._reinit_due = self.clock() + self.reinit_retry_s
            self.last_health = HealthReport(silent, False, 0)
            return self.last_health
        self._reinit_due = None
        if len(chain) < before:
            log.error("chain lost chips: %d before, %d after re-init", before, len(chain))
        if self._last_job is not None:
            self.send_job(self._last_job, clean=True)
        self.last_health = HealthReport(silent, True, len(chain))
        return self.last_health

    # --------------------------------------------------------------------------- status
    def stats(self) -> dict:
        """Plain-data status: chain snapshot plus driver and framing counters."""
        now = self.clock()
        c, d = self.counters, self.decoder.stats
        return {
            "model": self.spec.model,
            "frequency_mhz": self.frequency_mhz,
            "baud": self.baud,
            "ticket_difficulty": self.ticket_difficulty,
            "version_mask": self.version_mask,
            "job_interval_s": self.scheduler.interval,
            "jobs_sent": c.jobs_sent,
            "clean_jobs": c.clean_jobs,
            "nonces_valid": c.nonces_valid,
            "hw_errors": c.hw_errors,
            "stale_nonces": c.stale_nonces,
            "duplicate_nonces": c.duplicate_nonces,
            "reinits": c.reinits,
            "failed_reinits": c.failed_reinits,
            "silent_chip_events": c.silent_chip_events,
            "device_lost": c.device_lost,
            "device_recovered": c.device_recovered,
            "device_present": self.device_gone is None,
            "frames_ok": d.frames,
            "frames_dropped": d.dropped,
            "frames_crc_errors": d.crc_errors,
            "frames_truncated": d.truncated,
            "garbage_bytes": d.garbage_bytes,
            "chain": self.chain.snapshot(now) if self.chain else None,
        }

    def close(self) -> None:
        self.transport.close()

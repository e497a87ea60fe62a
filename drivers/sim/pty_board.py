"""A simulated board behind a pseudo-terminal: the host opens it like a real serial port.

:class:`PtyBoard` runs one :class:`~drivers.sim.board.SimBoard` in a single-threaded
select loop. It reads the line speed the host configured on the pty (termios) and
only passes bytes when it matches the chips' UART rate within 5 %, so a host at the
wrong speed gets nothing, as with real chips (default ~115,740 baud matches 115200;
after the fast-UART write the host must switch too). It publishes a discovery record
and a control socket (see :mod:`drivers.sim.discovery`, :mod:`drivers.sim.control`).

CPU use is bounded twice: the chain spends at most its ``hashrate_hps`` budget, and
the loop sleeps so hashing never takes more than ``max_cpu_fraction`` of wall time.
With no job the loop just waits on select (10 wake-ups a second).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import struct
import termios
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.sim.board import SimBoard, SimBoardConfig
from drivers.sim.control import ControlServer, i2c_request
from drivers.sim.discovery import SimBoardRecord, remove_record, runtime_dir, write_record
from drivers.sim.errors import SimConfigError

log = logging.getLogger(__name__)

BAUD_TOLERANCE = 0.05
ACTIVE_TICK_S = 0.02
IDLE_TICK_S = 0.1
STEP_WORK_S = 0.05
"""Target CPU time of one hashing step, so the loop stays responsive to the host."""
MIN_STEP_HASHES = 1000

_TCGETS2 = 0x802C542A  # _IOR('T', 0x2A, struct termios2): asm-generic (x86, arm, riscv)
_TERMIOS2 = struct.Struct("=4I B 19s 2I")
_CBAUD_TO_RATE = {
    getattr(termios, name): int(name[1:])
    for name in dir(termios)
    if name.startswith("B") and name[1:].isdigit()
}


def line_speed(fd: int) -> int:
    """Output baud rate the tty on ``fd`` is set to (handles custom BOTHER rates on Linux)."""
    with contextlib.suppress(OSError):
        raw = fcntl.ioctl(fd, _TCGETS2, bytes(_TERMIOS2.size))
        fields = _TERMIOS2.unpack(raw)
        ospeed = fields[-1]
        if ospeed:
            return ospeed
    speed = termios.tcgetattr(fd)[5]
    return _CBAUD_TO_RATE.get(speed, 0)


def speeds_match(host: int, chip: int) -> bool:
    return chip > 0 and abs(host - chip) <= chip * BAUD_TOLERANCE


class PtyBoard:
    """One simulated board on a pty, with discovery record and control socket."""

    def __init__(
        self,
        config: SimBoardConfig,
        *,
        board_id: str | None = None,
        base_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_cpu_fraction: float = 0.5,
        publish: bool = True,
    ) -> None:
        if not 0.05 <= max_cpu_fraction <= 1.0:
            raise SimConfigError("max_cpu_fraction must be within 0.05..1")
        self.board = SimBoard(config)
        self.board_id = board_id or f"sim-{os.getpid()}"
        self.base_dir = base_dir or runtime_dir(create=True)
        self.base_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.clock = clock
        self.max_cpu_fraction = max_cpu_fraction
        self.publish = publish
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.port = ""
        self.link = str(self.base_dir / f"{self.board_id}.tty")
        self.control_path = str(self.base_dir / f"{self.board_id}.sock")
        self.control: ControlServer | None = None
        self.bytes_lost_baud = 0
        self.bytes_lost_overflow = 0
        self._resume_hashing_at = 0.0
        self._max_hashes = MIN_STEP_HASHES
        self._published_baud = 0
        self._rate_mark: tuple[float, int] | None = None
        self.real_hashrate_hps = 0.0
        self._unplugged_until: float | None = None
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> str:
        """Create the pty, control socket and discovery record; returns the port path."""
        self._open_pty()
        self.control = ControlServer(self.control_path, self.handle_request)
        self._publish()
        log.info(
            "simulated %s x%d on %s", self.board.config.model, self.board.config.chips, self.port
        )
        return self.port

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master_fd, self._slave_fd = master, slave
        self.port = os.ttyname(slave)
        tmp = self.link + ".tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(self.port, tmp)
        os.replace(tmp, self.link)

    def _close_pty(self) -> None:
        for fd in (self.master_fd, self._slave_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self._slave_fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.link)

    def record(self) -> SimBoardRecord:
        cfg = self.board.config
        return SimBoardRecord(
            id=self.board_id,
            port=self.port,
            model=cfg.model,
            chips=cfg.chips,
            pid=os.getpid(),
            link=self.link,
            control=self.control_path,
            hashrate_hps=cfg.hashrate_hps,
            sim_ticket_difficulty=cfg.sim_ticket_difficulty,
            baud=self.board.chain.baud,
        )

    def _publish(self) -> None:
        self._published_baud = self.board.chain.baud
        if self.publish:
            write_record(self.record(), self.base_dir)

    def _track_rate(self, now: float) -> None:
        if self._rate_mark is None:
            self._rate_mark = (now, self.board.chain.stats.real_hashes)
            return
        then, hashes = self._rate_mark
        if now - then >= 1.0:
            done = self.board.chain.stats.real_hashes - hashes
            self.real_hashrate_hps = done / (now - then)
            self._rate_mark = (now, self.board.chain.stats.real_hashes)

    def close(self) -> None:
        self._stopped = True
        if self.control is not None:
            self.control.close()
            self.control = None
        self._close_pty()
        if self.publish:
            remove_record(self.board_id, self.base_dir)

    def __enter__(self) -> PtyBoard:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop -------------------------------------------------------------------------
    def host_baud(self) -> int:
        return line_speed(self.master_fd) if self.master_fd is not None else 0

    def step(self, timeout: float | None = None) -> None:
        """One loop turn: wait for input (bounded), feed, advance time, write replies."""
        chain = self.board.chain
        busy = any(c.job is not None for c in chain.chips)
        wait = timeout if timeout is not None else (ACTIVE_TICK_S if busy else IDLE_TICK_S)
        # Keep hashing below the CPU share: after h seconds of hashing, idle h*(1/f - 1).
        wait = max(wait, self._resume_hashing_at - time.perf_counter())
        fds = list(self.control.filenos()) if self.control else []
        if self.master_fd is not None:
            fds.append(self.master_fd)
        readable = select.select(fds, [], [], wait)[0] if fds else []
        if not fds:
            time.sleep(wait)
        if self.master_fd is not None and self.master_fd in readable:
            self._read_host()
        if self.control is not None:
            self.control.service(readable)
        now = self.clock()
        hashed = chain.stats.real_hashes
        started = time.perf_counter()
        # Woken early by the host or a control request: answer, but do not hash yet.
        allowed = self._max_hashes if started >= self._resume_hashing_at else 0
        self.board.advance(now, allowed)
        hash_time = time.perf_counter() - started
        hashed = chain.stats.real_hashes - hashed
        if hashed:
            self._resume_hashing_at = started + hash_time / self.max_cpu_fraction
        if hashed and hash_time > 0:
            # Size the next step so it stays near STEP_WORK_S of CPU, whatever the chip model.
            rate = hashed / hash_time
            self._max_hashes = max(MIN_STEP_HASHES, int(rate * STEP_WORK_S))
        self._write_host(chain.take_output())
        self._handle_unplug(now)
        self._track_rate(now)
        if self.port and chain.baud != self._published_baud:
            self._publish()  # readers see the chips' current UART rate

    def run(
        self,
        *,
        duration: float | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
        status_interval: float = 1.0,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Loop until ``should_stop()`` is true, ``duration`` passes, or :meth:`close`."""
        start = self.clock()
        next_status = start
        while not self._stopped and not (should_stop and should_stop()):
            self.step()
            now = self.clock()
            if on_status is not None and now >= next_status:
                on_status(self.status())
                next_status = now + status_interval
            if duration is not None and now - start >= duration:
                break

    def _read_host(self) -> None:
        try:
            data = os.read(self.master_fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # nobody has the port open
                return
            raise
        if speeds_match(self.host_baud(), self.board.chain.baud):
            self.board.chain.feed(data)
        else:
            self.bytes_lost_baud += len(data)

    def _write_host(self, data: bytes) -> None:
        if not data or self.master_fd is None:
            return
        if not speeds_match(self.host_baud(), self.board.chain.baud):
            self.bytes_lost_baud += len(data)
            return
        try:
            written = os.write(self.master_fd, data)
        except (BlockingIOError, OSError):
            written = 0
        self.bytes_lost_overflow += len(data) - written  # nobody reading: the line drops it

    def _handle_unplug(self, now: float) -> None:
        faults = self.board.faults
        if faults.unplug_seconds is not None and self._unplugged_until is None:
            seconds = faults.unplug_seconds
            faults.unplug_seconds = None
            log.info("simulated unplug of %s for %.1f s", self.port, seconds)
            self._close_pty()
            self.board.unplugged = True
            self.board.sync_power()
            self.port = ""
            self._publish()
            self._unplugged_until = now + seconds
        elif self._unplugged_until is not None and now >= self._unplugged_until:
            self._open_pty()
            self.board.unplugged = False
            self.board.sync_power()  # powered (and reset) before the host's first byte
            self._publish()
            self._unplugged_until = None
            log.info("simulated replug on %s", self.port)

    @property
    def unplugged(self) -> bool:
        return self._unplugged_until is not None

    # -- control socket -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        status = self.board.status()
        status.update(
            id=self.board_id,
            port=self.port,
            link=self.link,
            control=self.control_path,
            host_baud=self.host_baud(),
            unplugged=self.unplugged,
            bytes_lost_baud=self.bytes_lost_baud,
            real_hashrate_hps=round(self.real_hashrate_hps),
        )
        return status

    def handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "status":
            return {"ok": True, "status": self.status()}
        if cmd == "fault":
            self.board.faults.apply(
                str(request.get("name")), bool(request.get("on", True)), request.get("value")
            )
            return {"ok": True, "faults": self.board.faults.as_dict()}
        if cmd == "clear":
            self.board.faults.clear()
            return {"ok": True, "faults": self.board.faults.as_dict()}
        if cmd == "reset":
            self.board.chain.reset()
            return {"ok": True}
        if cmd == "i2c":
            return i2c_request(self.board.i2c, request)
        return {"ok": False, "error": f"unknown command {cmd!r}"}

"""The I2C bus interface every fan, temperature and power-stage driver talks to.

It follows the SMBus transaction names Linux and smbus2 use so the same part
drivers run on a real ``/dev/i2c-N`` bus (``drivers.i2c.linux``) and on the
simulated parts (``drivers.sim.i2c_bus``) without a branch.

Contract for implementations:
- ``addr`` is the 7-bit device address, ``reg`` the 8-bit command/register.
- ``*_word_data`` values are 16-bit and travel little-endian on the wire
  (SMBus rule: low byte first); implementations return/accept the integer.
- Block transfers move raw bytes after the command byte (no SMBus length byte).
- ``write_byte(addr, value)`` (SMBus "send byte": one command byte, no data, as
  PMBus CLEAR_FAULTS needs) is optional: part drivers use it when the bus has it
  (:func:`send_byte`). Implementations should add it.
- Any transfer failure (no ACK, bus error, device missing) raises
  :class:`I2CError` — never returns a made-up value — so sensor doubt is
  detectable by the callers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable


class I2CError(Exception):
    """A transfer on the bus failed (no ACK, bus error, device gone)."""

    def __init__(self, message: str, addr: int | None = None, reg: int | None = None) -> None:
        self.addr = addr
        self.reg = reg
        where = ""
        if addr is not None:
            where = f" (addr 0x{addr:02X}" + (f", reg 0x{reg:02X})" if reg is not None else ")")
        super().__init__(message + where)


class SensorError(I2CError):
    """A sensor answered, but its value cannot be trusted (or it did not answer).

    Raised by part drivers (EMC2101, TPS546) for implausible readings such as a
    stalled tach (0xFFFF), a diode fault code or an out-of-range temperature,
    and wrapping :class:`I2CError` for failed transfers. The thermal guard
    treats it as "sensor lost": fans to 100 %, power off.

    ``kind`` names the fault for counting (``fan-stall``, ``diode-open``, ``bus``,
    ``implausible``, PMBus status names such as ``IOUT_OC_FAULT``...).
    """

    def __init__(
        self,
        message: str,
        addr: int | None = None,
        reg: int | None = None,
        *,
        kind: str = "sensor",
    ) -> None:
        super().__init__(message, addr, reg)
        self.kind = kind
        self.recorded = False  # already booked in a FaultLog (nested driver calls)


@dataclass(slots=True)
class FaultLog:
    """Faults one part driver has seen, counted by kind, with the last message.

    The thermal guard and status APIs report these: a fault that cleared by itself is
    still visible afterwards as a count.
    """

    counts: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None

    def record(self, kind: str, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.last_error = message

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_kind": dict(self.counts), "last_error": self.last_error}


_F = TypeVar("_F", bound=Callable[..., Any])


def counts_faults(method: _F) -> _F:
    """Book every :class:`SensorError` the method raises in ``self.fault_log``, once."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except SensorError as exc:
            if not exc.recorded:
                exc.recorded = True
                self.fault_log.record(exc.kind, str(exc))
            raise

    return wrapper  # type: ignore[return-value]


@runtime_checkable
class SMBus(Protocol):
    """The SMBus-like transactions the part drivers need."""

    def read_byte_data(self, addr: int, reg: int) -> int:
        """Read one byte from register ``reg``."""
        ...

    def write_byte_data(self, addr: int, reg: int, value: int) -> None:
        """Write one byte to register ``reg``."""
        ...

    def read_word_data(self, addr: int, reg: int) -> int:
        """Read a 16-bit little-endian word from register ``reg``."""
        ...

    def write_word_data(self, addr: int, reg: int, value: int) -> None:
        """Write a 16-bit word (sent low byte first) to register ``reg``."""
        ...

    def read_i2c_block_data(self, addr: int, reg: int, length: int) -> list[int]:
        """Read ``length`` bytes starting at command ``reg``."""
        ...

    def write_i2c_block_data(self, addr: int, reg: int, data: list[int]) -> None:
        """Write ``data`` bytes after command ``reg``."""
        ...


def check_byte(value: int) -> int:
    """Validate an 8-bit value, raising ValueError (a caller bug, not a bus fault)."""
    if not 0 <= value <= 0xFF:
        raise ValueError(f"byte value out of range: {value}")
    return value


def check_word(value: int) -> int:
    """Validate a 16-bit value, raising ValueError (a caller bug, not a bus fault)."""
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"word value out of range: {value}")
    return value


@contextmanager
def sensor_errors(what: str, addr: int | None = None) -> Iterator[None]:
    """Inside the block, a failed transfer becomes :class:`SensorError` naming ``what``."""
    try:
        yield
    except SensorError:
        raise
    except (I2CError, OSError) as exc:
        raise SensorError(f"{what} failed: {exc}", addr, kind="bus") from exc


def send_byte(bus: SMBus, addr: int, command: int) -> None:
    """SMBus send-byte (a bare command such as PMBus CLEAR_FAULTS).

    Uses ``bus.write_byte`` when the bus implements it. A bus without it gets
    ``write_byte_data(addr, command, 0)``, which simulated parts accept as the
    same command; every real bus here (``LinuxI2CBus``) has ``write_byte``.
    """
    write_byte = getattr(bus, "write_byte", None)
    if write_byte is not None:
        write_byte(addr, check_byte(command))
    else:
        bus.write_byte_data(addr, check_byte(command), 0)

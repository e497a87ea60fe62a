"""systemd's notify protocol (sd_notify), spoken by every long-running process.

Under a `Type=notify` unit systemd passes `NOTIFY_SOCKET` (a datagram socket path, `@` for
the abstract namespace) and, with `WatchdogSec=`, `WATCHDOG_USEC` (+ `WATCHDOG_PID`). We send
`READY=1` once the service serves, `STATUS=` lines people see in `systemctl status`,
`WATCHDOG=1` from the event loop (a stuck loop stops the pings and systemd restarts us) and
`STOPPING=1` on the way out. Without `NOTIFY_SOCKET` every call is a no-op, so the same code
runs in a terminal, under systemd, and under the dev supervisor (which sets the variable too).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

__all__ = ["Notifier"]

log = logging.getLogger("blvm.sdnotify")


class Notifier:
    """One process's link to its supervisor; construct it once, early, from the environment."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if path.startswith("@"):
            self.address = "\0" + path[1:]
        elif path.startswith("/"):
            self.address = path
        self.watchdog_interval: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            # Ping at half the deadline, as sd_watchdog_enabled(3) advises.
            self.watchdog_interval = int(usec) / 2e6
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """Send `KEY=value` lines (keys upper-cased); False when nobody listens."""
        if self.address is None:
            return False
        text = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(text.encode(), self.address)
        except OSError as exc:  # the supervisor went away: never a reason to stop serving
            log.debug("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(ready=1, status=status)

    def status(self, text: str) -> bool:
        return self.send(status=text)

    def stopping(self, status: str = "stopping") -> bool:
        return self.send(stopping=1, status=status)

    async def watchdog(self, healthy: Callable[[], bool] = lambda: True) -> None:
        """Ping while `healthy()`; returns at once when no watchdog is configured."""
        interval = self.watchdog_interval
        if interval is None or self.address is None:
            return
        while True:
            if healthy():
                self.send(watchdog=1)
            else:
                log.warning("unhealthy: watchdog pings withheld")
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

"""`Notifier` speaks systemd's datagram protocol, to a real socket, as PID 1 would receive it."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from appliance.sdnotify import Notifier


def _listener(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    return sock


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready("up") is False
    assert notifier.watchdog_interval is None
    asyncio.run(asyncio.wait_for(notifier.watchdog(), 1))  # returns at once


def test_ready_status_stopping_reach_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    sock = _listener(path)
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("height 5")
    assert sock.recv(4096) == b"READY=1\nSTATUS=height 5"
    notifier.status("peers 3")
    assert sock.recv(4096) == b"STATUS=peers 3"
    notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"blvm-test-{os.getpid()}"
    sock = _listener("\0" + name)
    assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("x")
    assert sock.recv(4096) == b"STATUS=x"


def test_watchdog_pings_at_half_the_deadline(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    sock = _listener(path)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    assert notifier.watchdog_interval == 0.05

    async def run() -> None:
        task = asyncio.create_task(notifier.watchdog())
        await asyncio.sleep(0.22)
        task.cancel()

    asyncio.run(run())
    pings = []
    sock.settimeout(0.1)
    try:
        while True:
            pings.append(sock.recv(64))
    except TimeoutError:
        pass
    assert 3 <= len(pings) <= 6 and set(pings) == {b"WATCHDOG=1"}


def test_unhealthy_withholds_pings(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    sock = _listener(path)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})

    async def run() -> None:
        task = asyncio.create_task(notifier.watchdog(lambda: False))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(run())
    sock.settimeout(0.1)
    try:
        data = sock.recv(64)
    except TimeoutError:
        data = None
    assert data is None


def test_watchdog_for_another_pid_is_ignored(tmp_path: Path) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "1000000"}
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval is None
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 0.5


def test_a_vanished_supervisor_is_not_an_error(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.status("nobody listens") is False

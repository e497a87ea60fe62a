"""SerialTransport over a real pseudo-terminal pair."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import termios
import time

import pytest

from drivers.transport.base import (
    AsyncTransport,
    DeviceGone,
    Reopenable,
    Transport,
    TransportClosed,
    TransportError,
)
from drivers.transport.serial import SerialTransport


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    name = os.ttyname(slave)
    yield master, name
    os.close(master)
    os.close(slave)


def read_master(fd: int, n: int, timeout: float = 2.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            out += os.read(fd, 4096)
    return out


def make_raw(fd: int) -> None:
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ECHO | termios.ICANON)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def test_roundtrip_and_timeout(pty_pair):
    master, name = pty_pair
    t = SerialTransport(name)
    try:
        assert isinstance(t, Transport)
        t.write(b"\x55\xaa\x52\x05\x00\x00\x0a")
        assert read_master(master, 7) == b"\x55\xaa\x52\x05\x00\x00\x0a"
        os.write(master, b"\xaa\x55" + bytes(9))
        got = b""
        deadline = time.monotonic() + 2
        while len(got) < 11 and time.monotonic() < deadline:
            got += t.read(0.5)
        assert got == b"\xaa\x55" + bytes(9)
        start = time.monotonic()
        assert t.read(0.2) == b""
        assert 0.15 <= time.monotonic() - start < 1.0
    finally:
        t.close()


def test_set_baud_changes_the_port(pty_pair):
    _, name = pty_pair
    t = SerialTransport(name)
    try:
        t.set_baud(1_000_000)
        assert t.baud == 1_000_000
        assert termios.tcgetattr(t._ser.fd)[5] == termios.B1000000
        t.set_baud(115_200)
        assert termios.tcgetattr(t._ser.fd)[5] == termios.B115200
    finally:
        t.close()


def test_reset_hook_and_close(pty_pair):
    _, name = pty_pair
    calls = []
    t = SerialTransport(name, reset_hook=lambda: calls.append(1))
    t.reset_chips()
    assert calls == [1]
    t.close()
    t.close()  # idempotent
    assert not t._thread.is_alive()
    with pytest.raises(TransportClosed):
        t.write(b"x")
    with pytest.raises(TransportClosed):
        t.read(0.01)


def test_reset_line_failure_is_a_transport_error(pty_pair):
    _, name = pty_pair
    sleeps = []
    t = SerialTransport(name, reset_line="rts", sleep=sleeps.append)
    try:
        try:
            t.reset_chips()
        except TransportError:
            pass  # a pty has no modem lines; the error must be ours, not OSError
        else:
            assert sleeps == [0.1, 0.1]
    finally:
        t.close()


def test_open_failure():
    with pytest.raises(TransportError, match="cannot open"):
        SerialTransport("/dev/does-not-exist-blvm")
    with pytest.raises(ValueError):
        SerialTransport("/dev/null", reset_line="cts")


def test_asyncio_subscription_and_wrapper(pty_pair):
    master, name = pty_pair
    make_raw(master)
    t = SerialTransport(name)

    async def main():
        queue = t.subscribe(asyncio.get_running_loop())
        os.write(master, b"hello")
        got = b""
        while len(got) < 5:
            got += await asyncio.wait_for(queue.get(), 2.0)
        assert got == b"hello"
        a = AsyncTransport(t)
        await a.write(b"abc")
        await a.set_baud(1_000_000)
        await a.close()

    try:
        asyncio.run(main())
        assert read_master(master, 3) == b"abc"
    finally:
        t.close()


def test_vanished_port_is_device_gone_and_reopen_follows_the_link(tmp_path):
    """A pty whose far end closes looks like an unplugged USB-serial adapter (EIO)."""
    master, slave = os.openpty()
    link = tmp_path / "board.tty"
    link.symlink_to(os.ttyname(slave))
    t = SerialTransport(str(link), sleep=lambda s: time.sleep(min(s, 0.01)))
    try:
        assert isinstance(t, Reopenable)
        t.set_baud(1_000_000)
        os.close(master)
        os.close(slave)
        link.unlink()  # like /dev/serial/by-id/... disappearing
        with pytest.raises(DeviceGone, match="went away"):
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                t.read(0.05)
        with pytest.raises(DeviceGone):
            t.write(b"\x55\xaa")
        assert issubclass(DeviceGone, TransportError)
        with pytest.raises(DeviceGone, match="did not come back"):
            t.reopen(wait_s=0.1, poll_s=0.01)

        master, slave = os.openpty()  # the device returns, maybe under another pts number
        make_raw(slave)
        link.symlink_to(os.ttyname(slave))
        t.reopen(wait_s=1.0, poll_s=0.01)
        assert t.reopens == 1 and t.baud == 115_200
        assert termios.tcgetattr(slave)[5] == termios.B115200
        t.write(b"\x55\xaa\x52\x05\x00\x00\x0a")
        assert read_master(master, 7) == b"\x55\xaa\x52\x05\x00\x00\x0a"
        os.write(master, b"\xaa\x55" + bytes(9))
        got = b""
        deadline = time.monotonic() + 2
        while len(got) < 11 and time.monotonic() < deadline:
            got += t.read(0.5)
        assert got == b"\xaa\x55" + bytes(9)
    finally:
        t.close()
        with pytest.raises(TransportClosed):
            t.reopen(wait_s=0.0)
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)

"""The control socket of a running simulated board, and clients for it.

A Unix stream socket in the sim runtime dir carries newline-delimited JSON requests,
one response line each::

    {"cmd": "status"}
    {"cmd": "fault", "name": "fan-stall", "on": true}
    {"cmd": "fault", "name": "chip-dropout", "on": true, "value": 2}
    {"cmd": "clear"}                          # every fault off
    {"cmd": "reset"}                          # pulse the chips' reset line
    {"cmd": "i2c", "op": "read_word_data", "args": [36, 139]}

Responses are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.
:class:`RemoteI2CBus` turns the ``i2c`` request into a :class:`drivers.i2c.bus.SMBus`,
so the thermal guard and tuner processes drive the simulated fan controller and power
stage with their unmodified part drivers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from drivers.i2c.bus import I2CError
from drivers.sim.errors import SimControlError

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
I2C_OPS = frozenset(
    {
        "read_byte_data",
        "write_byte_data",
        "read_word_data",
        "write_word_data",
        "read_i2c_block_data",
        "write_i2c_block_data",
    }
)

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    """Non-blocking listener; the board's event loop selects on :meth:`filenos`."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        os.chmod(path, 0o600)
        self._listener.listen(8)
        self._listener.setblocking(False)
        self._clients: dict[int, tuple[socket.socket, bytearray]] = {}

    def filenos(self) -> list[int]:
        return [self._listener.fileno(), *self._clients]

    def service(self, readable: list[int]) -> None:
        """Accept connections and answer complete request lines on ready sockets."""
        if self._listener.fileno() in readable:
            with contextlib.suppress(BlockingIOError):
                conn, _ = self._listener.accept()
                conn.setblocking(False)
                self._clients[conn.fileno()] = (conn, bytearray())
        for fd in [fd for fd in readable if fd in self._clients]:
            conn, buf = self._clients[fd]
            try:
                chunk = conn.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk or len(buf) + len(chunk) > MAX_REQUEST:
                self._drop(fd)
                continue
            buf += chunk
            while b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                buf[:] = rest
                self._answer(conn, line)

    def _answer(self, conn: socket.socket, line: bytes) -> None:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("request must be a JSON object")
            response = self.handler(request)
        except Exception as exc:  # a bad request must never take the board down
            response = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        try:
            conn.setblocking(True)
            conn.settimeout(1.0)
            conn.sendall(json.dumps(response).encode() + b"\n")
            conn.setblocking(False)
        except OSError:
            self._drop(conn.fileno())

    def _drop(self, fd: int) -> None:
        conn, _ = self._clients.pop(fd)
        conn.close()

    def close(self) -> None:
        for fd in list(self._clients):
            self._drop(fd)
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class ControlClient:
    """Blocking client for one board's control socket."""

    def __init__(self, path: str, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = bytearray()

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError as exc:
                sock.close()
                raise SimControlError(
                    f"cannot reach simulated board at {self.path}: {exc}; is `blvm sim` running?"
                ) from exc
            self._sock = sock
        return self._sock

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        sock = self._connect()
        try:
            sock.sendall(json.dumps(payload).encode() + b"\n")
            while b"\n" not in self._buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise SimControlError("simulated board closed the control connection")
                self._buf += chunk
        except OSError as exc:
            self.close()
            raise SimControlError(f"control request failed: {exc}") from exc
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf[:] = rest
        return json.loads(line)

    def checked(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Like :meth:`request` but raises :class:`SimControlError` on ``ok: false``."""
        response = self.request(payload)
        if not response.get("ok"):
            raise SimControlError(response.get("error", "request failed"))
        return response

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf.clear()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteI2CBus:
    """:class:`drivers.i2c.bus.SMBus` over a simulated board's control socket."""

    def __init__(self, control_path: str, timeout: float = 2.0) -> None:
        self._client = ControlClient(control_path, timeout)

    def _op(self, op: str, *args: Any) -> Any:
        try:
            response = self._client.request({"cmd": "i2c", "op": op, "args": list(args)})
        except SimControlError as exc:
            raise I2CError(f"simulated bus unreachable: {exc}", args[0], args[1]) from exc
        if not response.get("ok"):
            if response.get("value_error"):
                raise ValueError(response.get("error"))
            raise I2CError(response.get("error", "transfer failed"), args[0], args[1])
        return response.get("result")

    def read_byte_data(self, addr: int, reg: int) -> int:
        return self._op("read_byte_data", addr, reg)

    def write_byte_data(self, addr: int, reg: int, value: int) -> None:
        self._op("write_byte_data", addr, reg, value)

    def read_word_data(self, addr: int, reg: int) -> int:
        return self._op("read_word_data", addr, reg)

    def write_word_data(self, addr: int, reg: int, value: int) -> None:
        self._op("write_word_data", addr, reg, value)

    def read_i2c_block_data(self, addr: int, reg: int, length: int) -> list[int]:
        return self._op("read_i2c_block_data", addr, reg, length)

    def write_i2c_block_data(self, addr: int, reg: int, data: list[int]) -> None:
        self._op("write_i2c_block_data", addr, reg, list(data))

    def close(self) -> None:
        self._client.close()


def i2c_request(bus: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Server side of an ``i2c`` request against a local bus object."""
    op = request.get("op")
    if op not in I2C_OPS:
        return {"ok": False, "error": f"unknown i2c op {op!r}"}
    args = request.get("args", [])
    try:
        result = getattr(bus, op)(*args)
    except I2CError as exc:
        return {"ok": False, "error": str(exc)}
    except (ValueError, TypeError) as exc:
        return {"ok": False, "error": str(exc), "value_error": True}
    return {"ok": True, "result": result}

"""Newline-delimited JSON framing: bytes in, JSON objects out, with a line-length bound.

Stratum V1 is one JSON-RPC object per line. A peer that never sends a newline must not make
us buffer without end, so a line longer than ``max_line_bytes`` is a ``ProtocolError``.
"""

from __future__ import annotations

import json
from typing import Any

from protocols.stratum_v1.errors import ProtocolError

MAX_LINE_BYTES = 16 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


class LineDecoder:
    """Splits a byte stream into JSON objects, one per non-empty line."""

    __slots__ = ("_buf", "_dead", "max_line_bytes")

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._buf = bytearray()
        self._dead = False

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete line held back."""
        return len(self._buf)

    def lines(self, data: bytes) -> list[bytes]:
        """Add bytes; return every complete non-empty line, stripped, in order."""
        if self._dead:
            raise ProtocolError("connection already failed; close it")
        if self._buf or type(data) is not bytes:  # split and strip below want bytes
            self._buf += data
            data = bytes(self._buf)
        parts = data.split(b"\n")
        rest = parts.pop()
        limit = self.max_line_bytes
        if parts and max(map(len, parts)) > limit:
            longest = max(map(len, parts))
            self.fail()
            raise ProtocolError(f"line of {longest} bytes exceeds the {limit} byte limit")
        if len(rest) > limit:
            self.fail()
            raise ProtocolError(f"unterminated line exceeds the {limit} byte limit")
        self._buf = bytearray(rest)
        return [line for line in map(bytes.strip, parts) if line]

    def parse(self, line: bytes) -> dict[str, Any]:
        """`parse_line`, and a bad line fails the decoder (the connection must close)."""
        try:
            return parse_line(line)
        except ProtocolError:
            self.fail()
            raise

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add bytes; return every complete line's JSON object, in order."""
        return [self.parse(line) for line in self.lines(data)]

    def fail(self) -> None:
        """Refuse all further input: the stream can no longer be trusted."""
        self._dead = True
        self._buf.clear()


def parse_line(line: bytes) -> dict[str, Any]:
    """One line of bytes → a JSON object (dict); anything else is a ``ProtocolError``."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"line is not UTF-8: {exc}") from None
    try:
        obj = _decoder.decode(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def encode_accepted(req_id: int) -> bytes:
    """``encode_line`` of an accepted share's answer with an integer id, without json."""
    return b'{"id":%d,"result":true,"error":null}\n' % req_id


def encode_line(obj: dict[str, Any]) -> bytes:
    """A JSON object → one compact line of bytes ending in a newline."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"

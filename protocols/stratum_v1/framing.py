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

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add bytes; return every complete line's JSON object, in order."""
        if self._dead:
            raise ProtocolError("connection already failed; close it")
        self._buf += data
        out: list[dict[str, Any]] = []
        start = 0
        buf = self._buf
        try:
            while True:
                end = buf.find(b"\n", start)
                if end < 0:
                    break
                if end - start > self.max_line_bytes:
                    raise ProtocolError(
                        f"line of {end - start} bytes exceeds the {self.max_line_bytes} byte limit"
                    )
                line = bytes(buf[start:end]).strip()
                start = end + 1
                if line:
                    out.append(parse_line(line))
            if len(buf) - start > self.max_line_bytes:
                raise ProtocolError(
                    f"unterminated line exceeds the {self.max_line_bytes} byte limit"
                )
        except ProtocolError:
            self._dead = True
            self._buf.clear()
            raise
        del buf[:start]
        return out


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

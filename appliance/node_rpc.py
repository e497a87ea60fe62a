"""A small asyncio JSON-RPC client for our node (Bitcoin Core-compatible RPC).

Modules talk to the node only through its interfaces; this is the RPC one. Credentials come
from the node's cookie file, re-read at every call because the node writes a fresh cookie at
each start (so a node restart never needs ours). One HTTP/1.1 request per connection keeps it
simple; the callers (job declaration) make a few calls per job, not thousands.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node.rpc.auth import read_cookie

__all__ = ["NodeRpc", "RpcCallError", "RpcUnavailable"]

MAX_REPLY = 64 << 20


class RpcUnavailable(Exception):
    """The node did not answer (down, restarting, wrong credentials)."""


class RpcCallError(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class NodeRpc:
    """`await rpc.call("getbestblockhash")`; `await rpc.batch([("getrawtransaction", [t])])`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 18443,
        *,
        cookie_dir: Path | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        if cookie_dir is None and (user is None or password is None):
            raise ValueError("give the node's cookie directory or a user and password")
        self.host, self.port = host, port
        self.cookie_dir = cookie_dir
        self.user, self.password = user, password
        self.timeout = timeout
        self._ids = 0

    def _auth(self) -> str:
        if self.user is not None and self.password is not None:
            user, password = self.user, self.password
        else:
            assert self.cookie_dir is not None
            try:
                user, password = read_cookie(self.cookie_dir)
            except OSError as exc:
                raise RpcUnavailable(f"no RPC cookie in {self.cookie_dir}: {exc}") from None
        return base64.b64encode(f"{user}:{password}".encode()).decode()

    async def _post(self, body: bytes) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    head = (
                        f"POST / HTTP/1.1\r\nHost: {self.host}\r\n"
                        f"Authorization: Basic {self._auth()}\r\n"
                        "Content-Type: application/json\r\nConnection: close\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n"
                    )
                    writer.write(head.encode() + body)
                    await writer.drain()
                    status_line = await reader.readline()
                    headers: dict[str, str] = {}
                    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                        key, _, value = line.decode("latin-1").partition(":")
                        headers[key.strip().lower()] = value.strip()
                    length = int(headers.get("content-length", "0"))
                    if not 0 <= length <= MAX_REPLY:
                        raise RpcUnavailable(f"reply of {length} bytes")
                    payload = await reader.readexactly(length) if length else b""
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            raise RpcUnavailable(f"node RPC {self.host}:{self.port}: {exc!r}") from None
        parts = status_line.split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status == 401:
            raise RpcUnavailable("node RPC refused our credentials")
        if not payload:
            raise RpcUnavailable(f"node RPC answered HTTP {status} without a body")
        return json.loads(payload)

    def _request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        self._ids += 1
        return {"jsonrpc": "1.0", "id": self._ids, "method": method, "params": list(params)}

    async def call(self, method: str, *params: Any) -> Any:
        reply = await self._post(json.dumps(self._request(method, params)).encode())
        if reply.get("error"):
            err = reply["error"]
            raise RpcCallError(int(err.get("code", 0)), str(err.get("message", "")))
        return reply.get("result")

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results in call order; a call that failed gives its `RpcCallError` in its place."""
        if not calls:
            return []
        requests = [self._request(method, params) for method, params in calls]
        replies = await self._post(json.dumps(requests).encode())
        by_id = {r.get("id"): r for r in replies} if isinstance(replies, list) else {}
        out: list[Any] = []
        for request in requests:
            reply = by_id.get(request["id"])
            if reply is None:
                out.append(RpcCallError(0, "no reply in the batch"))
            elif reply.get("error"):
                err = reply["error"]
                out.append(RpcCallError(int(err.get("code", 0)), str(err.get("message", ""))))
            else:
                out.append(reply.get("result"))
        return out

"""HTTP transport for the JSON-RPC: localhost by default, Basic auth, bounded bodies."""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from node.rpc.auth import Authenticator
from node.rpc.dispatch import Dispatcher
from node.rpc.errors import RpcCode

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024  # a 4 MB block hex-encoded twice over still fits
AUTH_FAILURE_DELAY = 0.25  # Core sleeps after a bad password to slow brute force
DRAIN_TIMEOUT = 5.0  # on stop, wait this long for replies in progress (the `stop` call's own)


class RpcServer:
    def __init__(
        self, dispatcher: Dispatcher, auth: Authenticator, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.dispatcher = dispatcher
        self.auth = auth
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = host
        self._thread: threading.Thread | None = None
        self._busy = 0  # requests being answered
        self._idle = threading.Condition()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "blvm-json-rpc/0.1"
            # Headers and body go out as two writes; with Nagle on, the body then waits for
            # the client's delayed ACK (~40 ms per call on Linux loopback).
            disable_nagle_algorithm = True

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("rpc %s: " + fmt, self.client_address[0], *args)

            def _reply(
                self, status: int, body: bytes = b"", extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._reply(HTTPStatus.METHOD_NOT_ALLOWED)

            def do_POST(self) -> None:
                with server._idle:
                    server._busy += 1
                try:
                    self._post()
                finally:
                    with server._idle:
                        server._busy -= 1
                        server._idle.notify_all()

            def _post(self) -> None:
                if not server.auth.check_header(self.headers.get("Authorization")):
                    time.sleep(AUTH_FAILURE_DELAY)
                    self._reply(
                        HTTPStatus.UNAUTHORIZED, extra={"WWW-Authenticate": 'Basic realm="jsonrpc"'}
                    )
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY:
                    self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                    self.close_connection = True
                    return
                raw = self.rfile.read(length)
                status, body = server.handle_body(raw)
                self._reply(status, body)

        return Handler

    def handle_body(self, raw: bytes) -> tuple[int, bytes]:
        try:
            request = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            error = {"code": RpcCode.PARSE_ERROR, "message": "Parse error"}
            return 500, json.dumps({"result": None, "error": error, "id": None}).encode()
        if isinstance(request, list):
            replies = [r for r, _ in map(self.dispatcher.handle_single, request) if r is not None]
            return 200, json.dumps(replies).encode()
        reply, status = self.dispatcher.handle_single(request)
        if reply is None:
            return 204, b""
        return status, json.dumps(reply).encode()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rpc", daemon=True)
        self._thread.start()
        log.info("JSON-RPC listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        # Let replies in progress go out first: `stop` over RPC must still get its answer.
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, DRAIN_TIMEOUT)
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

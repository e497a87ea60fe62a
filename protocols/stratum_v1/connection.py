"""Client and server state machines for one Stratum V1 connection (sans-IO).

``receive_data(bytes) -> list[event]`` parses what the peer sent; ``send(event) -> bytes``
gives the bytes to write. Neither touches a socket or a clock. A ``ProtocolError`` from
``receive_data`` means this connection is finished: close it (a server keeps its others).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from typing import Any

from protocols.stratum_v1 import codec
from protocols.stratum_v1 import events as ev
from protocols.stratum_v1.errors import ErrorCode, LocalProtocolError, ProtocolError
from protocols.stratum_v1.framing import (
    MAX_LINE_BYTES,
    LineDecoder,
    encode_accepted,
    encode_line,
)
from protocols.stratum_v1.work import negotiate_version_mask, version_bits_allowed

log = logging.getLogger(__name__)

MAX_PENDING = 4096  # requests awaiting an answer; a peer flooding ids is cut off

_CLIENT_REQUESTS = (
    ev.Subscribe,
    ev.Authorize,
    ev.Configure,
    ev.SuggestDifficulty,
    ev.ExtranonceSubscribe,
    ev.Submit,
)
_SERVER_REQUESTS = (ev.Ping, ev.GetVersion)
_SERVER_NOTIFICATIONS = (
    ev.SetDifficulty,
    ev.Notify,
    ev.SetExtranonce,
    ev.SetVersionMask,
    ev.Reconnect,
    ev.ShowMessage,
)
_SERVER_RESPONSES = (
    ev.SubscribeResult,
    ev.AuthorizeResult,
    ev.ConfigureResult,
    ev.SubmitResult,
    ev.Ack,
    ev.ErrorResponse,
)
# which response types may answer which request (ErrorResponse answers anything)
_ANSWERS: dict[type, tuple[type, ...]] = {
    ev.Subscribe: (ev.SubscribeResult,),
    ev.Authorize: (ev.AuthorizeResult,),
    ev.Configure: (ev.ConfigureResult,),
    ev.SuggestDifficulty: (ev.Ack,),
    ev.ExtranonceSubscribe: (ev.Ack,),
    ev.Submit: (ev.SubmitResult,),
    ev.Ping: (ev.Pong,),
    ev.GetVersion: (ev.VersionResult,),
}
_UNKNOWN = ev.UnknownMethod
_NOTED = (*_CLIENT_REQUESTS, _UNKNOWN)  # client messages that await our answer


class _Connection:
    __slots__ = ("_decoder", "_ids", "_our_pending", "_peer_count", "_peer_pending")

    def __init__(self, max_line_bytes: int) -> None:
        self._decoder = LineDecoder(max_line_bytes)
        self._ids = itertools.count(1)
        self._our_pending: dict[ev.RequestId, Any] = {}  # requests we sent, by id
        # requests we must answer, oldest first per id: some miners reuse one id for all
        self._peer_pending: dict[ev.RequestId, list[Any]] = {}
        self._peer_count = 0

    def _assign_id(self, event: Any) -> Any:
        if event.req_id is not None:
            return event
        rid = next(self._ids)
        while rid in self._our_pending:
            rid = next(self._ids)
        return replace(event, req_id=rid)

    def _send_request(self, event: Any) -> bytes:
        event = self._assign_id(event)
        self._our_pending[event.req_id] = event
        return encode_line(codec.encode_event(event))

    def _send_response(self, event: Any) -> tuple[bytes, Any]:
        """Encode an answer; return it with the request it answers."""
        queue = self._peer_pending.get(event.req_id)
        if not queue:
            raise LocalProtocolError(f"no pending request with id {event.req_id!r} to answer")
        request = queue[0]
        if not isinstance(event, ev.ErrorResponse) and not isinstance(
            event, _ANSWERS.get(type(request), ())
        ):
            raise LocalProtocolError(
                f"{type(event).__name__} cannot answer {type(request).__name__}"
            )
        if (
            type(event) is ev.SubmitResult
            and event.accepted is True
            and event.error is None
            and type(event.req_id) is int
        ):
            data = encode_accepted(event.req_id)  # the hot path: one answer per share
        else:
            data = encode_line(codec.encode_event(event))
        queue.pop(0)
        if not queue:
            del self._peer_pending[event.req_id]
        self._peer_count -= 1
        return data, request

    def _note_peer_request(self, event: Any) -> None:
        rid = getattr(event, "req_id", None)
        if rid is None:
            return
        if self._peer_count >= MAX_PENDING:
            raise ProtocolError(f"more than {MAX_PENDING} unanswered requests")
        queue = self._peer_pending.setdefault(rid, [])
        if queue:
            log.debug("peer reused pending request id %r", rid)
        queue.append(event)
        self._peer_count += 1

    def _take_response(self, obj: dict[str, Any], rid: ev.RequestId | None) -> Any:
        request = self._our_pending.pop(rid, None) if rid is not None else None
        if request is None:
            return ev.UnexpectedResponse(rid, obj.get("result"), codec._rpc_error(obj.get("error")))
        return codec.decode_response(request, rid, obj)

    @property
    def pending_requests(self) -> dict[ev.RequestId, Any]:
        """Requests we sent that are still unanswered (read-only view by convention)."""
        return self._our_pending

    @property
    def unanswered_peer_requests(self) -> int:
        """How many peer requests still wait for our answer."""
        return self._peer_count


class ClientConnection(_Connection):
    """The miner (or a proxy's upstream) side."""

    __slots__ = (
        "authorized_workers",
        "difficulty",
        "extranonce1",
        "extranonce2_size",
        "subscribed",
        "user_agent",
        "version_mask",
    )

    def __init__(self, user_agent: str = "blvm", max_line_bytes: int = MAX_LINE_BYTES) -> None:
        super().__init__(max_line_bytes)
        self.user_agent = user_agent
        self.subscribed = False
        self.extranonce1: bytes | None = None
        self.extranonce2_size: int | None = None
        self.authorized_workers: set[str] = set()
        self.version_mask: int | None = None
        self.difficulty: float | None = None

    def send(self, event: Any) -> bytes:
        if isinstance(event, _CLIENT_REQUESTS):
            if isinstance(event, ev.Submit):
                self._check_submit(event)
            return self._send_request(event)
        if isinstance(event, ev.Pong | ev.VersionResult | ev.ErrorResponse):
            return self._send_response(event)[0]
        raise LocalProtocolError(f"a client cannot send {type(event).__name__}")

    def _check_submit(self, submit: ev.Submit) -> None:
        if not self.subscribed:
            raise LocalProtocolError("submit before the subscription was answered")
        if self.extranonce2_size is not None and len(submit.extranonce2) != self.extranonce2_size:
            raise LocalProtocolError(
                f"extranonce2 is {len(submit.extranonce2)} bytes, pool wants {self.extranonce2_size}"
            )
        if submit.version_bits is not None and not version_bits_allowed(
            submit.version_bits, self.version_mask or 0
        ):
            raise LocalProtocolError("version bits outside the negotiated mask")

    def receive_data(self, data: bytes) -> list[Any]:
        out: list[Any] = []
        for obj in self._decoder.feed(data):
            method, rid = codec.split_message(obj)
            if method is None:
                event = self._take_response(obj, rid)
            else:
                event = codec.decode_server_message(obj, method, rid)
                if isinstance(event, _SERVER_REQUESTS) or (
                    isinstance(event, _UNKNOWN) and rid is not None
                ):
                    self._note_peer_request(event)
            self._update(event)
            out.append(event)
        return out

    def _update(self, event: Any) -> None:
        match event:
            case ev.SubscribeResult():
                self.subscribed = True
                self.extranonce1 = event.extranonce1
                self.extranonce2_size = event.extranonce2_size
            case ev.SetExtranonce():
                self.extranonce1 = event.extranonce1
                self.extranonce2_size = event.extranonce2_size
            case ev.AuthorizeResult(authorized=True):
                self.authorized_workers.add(event.request.username)
            case ev.ConfigureResult():
                if event.version_rolling and event.version_rolling_mask is not None:
                    self.version_mask = event.version_rolling_mask
                elif event.version_rolling is False:
                    self.version_mask = None
            case ev.SetVersionMask():
                self.version_mask = event.mask
            case ev.SetDifficulty():
                self.difficulty = event.difficulty


class ServerConnection(_Connection):
    """The pool (or a proxy's downstream) side of one miner connection."""

    __slots__ = (
        "authorized_workers",
        "difficulty",
        "extranonce1",
        "extranonce2_size",
        "extranonce_subscribed",
        "subscribed",
        "suggested_difficulty",
        "user_agent",
        "version_mask",
    )

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        super().__init__(max_line_bytes)
        self.subscribed = False
        self.user_agent: str | None = None
        self.extranonce1: bytes | None = None
        self.extranonce2_size: int | None = None
        self.authorized_workers: set[str] = set()
        self.version_mask: int | None = None
        self.difficulty: float | None = None
        self.suggested_difficulty: float | None = None
        self.extranonce_subscribed = False

    def receive_data(self, data: bytes) -> list[Any]:
        out: list[Any] = []
        decoder = self._decoder
        match_submit = codec.match_submit
        for line in decoder.lines(data):
            event = match_submit(line)  # the hot path: one per share, without json
            if event is not None:
                self._note_peer_request(event)
                out.append(event)
                continue
            obj = decoder.parse(line)
            method, rid = codec.split_message(obj)
            if method is None:
                event = self._take_response(obj, rid)
            else:
                event = codec.decode_client_request(obj, method, rid)
                if isinstance(event, _NOTED):
                    self._note_peer_request(event)
                if isinstance(event, ev.Subscribe):
                    self.user_agent = event.user_agent
                elif isinstance(event, ev.SuggestDifficulty):
                    self.suggested_difficulty = event.difficulty
            out.append(event)
        return out

    def accept_share(self, req_id: ev.RequestId) -> bytes:
        """The answer to an accepted submit: ``send(SubmitResult(req_id, True))``, built for
        the hot path (one per share) without the event object."""
        queue = self._peer_pending.get(req_id)
        if not queue or type(queue[0]) is not ev.Submit or type(req_id) is not int:
            return self._send_response(ev.SubmitResult(req_id, True))[0]  # the general path
        queue.pop(0)
        if not queue:
            del self._peer_pending[req_id]
        self._peer_count -= 1
        return encode_accepted(req_id)

    def send(self, event: Any) -> bytes:
        if isinstance(event, _SERVER_NOTIFICATIONS):
            self._update_on_send(event, None)
            return encode_line(codec.encode_event(event))
        if isinstance(event, _SERVER_REQUESTS):
            return self._send_request(event)
        if not isinstance(event, _SERVER_RESPONSES):
            raise LocalProtocolError(f"a server cannot send {type(event).__name__}")
        data, request = self._send_response(event)
        self._update_on_send(event, request)
        return data

    def _update_on_send(self, event: Any, request: Any) -> None:
        match event:
            case ev.SubscribeResult():
                self.subscribed = True
                self.extranonce1 = event.extranonce1
                self.extranonce2_size = event.extranonce2_size
            case ev.SetExtranonce():
                self.extranonce1 = event.extranonce1
                self.extranonce2_size = event.extranonce2_size
            case ev.AuthorizeResult(authorized=True):
                self.authorized_workers.add(request.username)
            case ev.ConfigureResult():
                self.version_mask = event.version_rolling_mask if event.version_rolling else None
            case ev.SetVersionMask():
                self.version_mask = event.mask
            case ev.SetDifficulty():
                self.difficulty = event.difficulty
            case ev.Ack() if isinstance(request, ev.ExtranonceSubscribe):
                self.extranonce_subscribed = True

    # ---- helpers a pool uses to answer ---------------------------------------------------

    def configure_result(self, request: ev.Configure, pool_mask: int) -> ev.ConfigureResult:
        """BIP310 answer: version rolling on with the mask both sides allow, when asked.

        A mask with fewer bits than the miner's ``min-bit-count`` is still offered: the miner
        decides whether it can work with it (an empty mask turns rolling off).
        """
        miner_mask = request.version_rolling_mask
        if miner_mask is None:
            return ev.ConfigureResult(request.req_id)
        mask = negotiate_version_mask(pool_mask, miner_mask)
        return ev.ConfigureResult(request.req_id, mask != 0, mask)

    def check_submit(self, submit: ev.Submit) -> ErrorCode | None:
        """Connection-level share checks (job, duplicate and difficulty come later)."""
        if not self.subscribed:
            return ErrorCode.NOT_SUBSCRIBED
        if submit.worker not in self.authorized_workers:
            return ErrorCode.UNAUTHORIZED_WORKER
        if self.extranonce2_size is not None and len(submit.extranonce2) != self.extranonce2_size:
            return ErrorCode.OTHER
        if submit.version_bits is not None and self.version_mask is None:
            return ErrorCode.OTHER  # rolled without negotiating; the mask itself is a job check
        return None

    @staticmethod
    def reject(
        req_id: ev.RequestId, code: ErrorCode, message: str | None = None
    ) -> ev.SubmitResult:
        """A rejected-share answer with the usual ``[code, message, null]`` error."""
        return ev.SubmitResult(
            req_id, False, ev.RpcError(int(code), message or code.default_message)
        )

    @staticmethod
    def error(
        req_id: ev.RequestId, code: ErrorCode, message: str | None = None
    ) -> ev.ErrorResponse:
        return ev.ErrorResponse(req_id, ev.RpcError(int(code), message or code.default_message))

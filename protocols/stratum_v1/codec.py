"""Mapping between JSON-RPC objects and events, both directions, with shape checks.

Every decode either returns an event or raises ``ProtocolError`` naming the bad field;
no other exception type escapes (the fuzz tests hold us to that).
"""

from __future__ import annotations

import itertools
import math
import re
from binascii import unhexlify
from typing import Any

from protocols.stratum_v1 import events as ev
from protocols.stratum_v1.errors import ProtocolError
from protocols.stratum_v1.work import swap_words

MAX_EXTRANONCE2_SIZE = 32
MAX_MERKLE_BRANCH = 32
_HEXDIGITS = "0123456789abcdefABCDEF"

# ---- primitive field checks --------------------------------------------------------------


def _str(v: Any, name: str) -> str:
    if not isinstance(v, str):
        raise ProtocolError(f"{name}: expected a string, got {type(v).__name__}")
    return v


def _opt_str(v: Any, name: str) -> str | None:
    return None if v is None else _str(v, name)


def _int(v: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"{name}: expected an integer, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise ProtocolError(f"{name}: {v} outside {lo}..{hi}")
    return v


def _difficulty(v: Any, name: str = "difficulty") -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ProtocolError(f"{name}: expected a number, got {type(v).__name__}")
    if isinstance(v, int) and v > 2**256:
        raise ProtocolError(f"{name}: absurdly large")
    value = float(v)
    if not math.isfinite(value) or value <= 0:
        raise ProtocolError(f"{name}: must be a positive finite number, got {v!r}")
    return value


def _hex(v: Any, name: str, size: int | None = None) -> bytes:
    s = _str(v, name)
    try:
        raw = bytes.fromhex(s)
    except ValueError:
        raise ProtocolError(f"{name}: not hex: {s[:80]!r}") from None
    if len(raw) * 2 != len(s):
        raise ProtocolError(f"{name}: whitespace inside hex")
    if size is not None and len(raw) != size:
        raise ProtocolError(f"{name}: expected {size} bytes, got {len(raw)}")
    return raw


def _u32(v: Any, name: str) -> int:
    """A 32-bit field as stratum sends it: big-endian hex, at most 8 digits."""
    s = _str(v, name)
    if not 0 < len(s) <= 8:
        raise ProtocolError(f"{name}: expected 1-8 hex digits, got {len(s)}")
    if s.strip(_HEXDIGITS):  # int(s, 16) alone would accept "0x", "_" and spaces
        raise ProtocolError(f"{name}: not hex: {s!r}")
    return int(s, 16)


def _params(obj: dict[str, Any], method: str) -> list[Any]:
    params = obj.get("params", [])
    if params is None:
        return []
    if not isinstance(params, list):
        raise ProtocolError(f"{method}: params must be an array")
    return params


def _need(params: list[Any], n: int, method: str) -> None:
    if len(params) < n:
        raise ProtocolError(f"{method}: expected at least {n} params, got {len(params)}")


def _req_id(obj: dict[str, Any]) -> ev.RequestId | None:
    rid = obj.get("id")
    if rid is None:
        return None
    if isinstance(rid, bool) or not isinstance(rid, int | str):
        raise ProtocolError(f"id: expected an integer or string, got {type(rid).__name__}")
    return rid


def _rpc_error(v: Any) -> ev.RpcError | None:
    if v is None:
        return None
    if isinstance(v, list):
        if len(v) < 2:
            raise ProtocolError("error: expected [code, message, ...]")
        code = _int(v[0], "error code", -(2**31), 2**31 - 1)
        return ev.RpcError(code, _str(v[1], "error message"), v[2] if len(v) > 2 else None)
    if isinstance(v, dict):
        code = _int(v.get("code"), "error code", -(2**31), 2**31 - 1)
        return ev.RpcError(code, _str(v.get("message", ""), "error message"), v.get("data"))
    if isinstance(v, str):
        return ev.RpcError(20, v)
    raise ProtocolError(f"error: unexpected {type(v).__name__}")


# ---- message classification -------------------------------------------------------------


def split_message(obj: dict[str, Any]) -> tuple[str | None, ev.RequestId | None]:
    """Return (method, id); method is ``None`` for a response."""
    rid = _req_id(obj)
    if "method" in obj:
        return _str(obj["method"], "method"), rid
    if "result" not in obj and "error" not in obj:
        raise ProtocolError("message has neither method nor result/error")
    return None, rid


# ---- requests the server receives --------------------------------------------------------


def decode_client_request(obj: dict[str, Any], method: str, rid: ev.RequestId | None) -> Any:
    if method == "mining.submit":  # the hot path: one per share
        params = obj.get("params")
        if type(params) is list:
            return decode_submit(params, rid)
    params = _params(obj, method)
    if method == "mining.submit":
        return decode_submit(params, rid)
    if method == "mining.subscribe":
        ua = _opt_str(params[0], "user_agent") if params else None
        session = params[1] if len(params) > 1 else None
        if session is not None and not isinstance(session, str):
            session = None  # some firmwares send a number or object here; it is only a hint
        return ev.Subscribe(ua, session, rid)
    if method == "mining.authorize":
        _need(params, 1, method)
        password = params[1] if len(params) > 1 else ""
        return ev.Authorize(_str(params[0], "username"), _opt_str(password, "password") or "", rid)
    if method == "mining.configure":
        _need(params, 1, method)
        names = params[0]
        if not isinstance(names, list):
            raise ProtocolError("mining.configure: extensions must be an array")
        exts = tuple(_str(n, "extension") for n in names)
        opts = params[1] if len(params) > 1 else {}
        if not isinstance(opts, dict):
            raise ProtocolError("mining.configure: parameters must be an object")
        if ev.VERSION_ROLLING in exts:
            if ev.VERSION_ROLLING_MASK in opts:
                _u32(opts[ev.VERSION_ROLLING_MASK], ev.VERSION_ROLLING_MASK)
            if ev.VERSION_ROLLING_MIN_BIT_COUNT in opts:
                # BIP310 says integer; SRI's sv1_api and some firmwares send a hex string
                count = opts[ev.VERSION_ROLLING_MIN_BIT_COUNT]
                if isinstance(count, str):
                    _u32(count, ev.VERSION_ROLLING_MIN_BIT_COUNT)
                else:
                    _int(count, ev.VERSION_ROLLING_MIN_BIT_COUNT, 0, 2**32 - 1)
        return ev.Configure(exts, dict(opts), rid)
    if method == "mining.suggest_difficulty":
        _need(params, 1, method)
        return ev.SuggestDifficulty(_difficulty(params[0]), rid)
    if method == "mining.extranonce.subscribe":
        return ev.ExtranonceSubscribe(rid)
    return ev.UnknownMethod(method, params, rid)


def decode_submit(params: list[Any], rid: ev.RequestId | None) -> ev.Submit:
    """The hot path of a pool: kept flat on purpose."""
    if len(params) < 5:
        raise ProtocolError(f"mining.submit: expected at least 5 params, got {len(params)}")
    worker, job_id = params[0], params[1]
    if not isinstance(worker, str):
        raise ProtocolError("mining.submit: worker must be a string")
    if isinstance(job_id, int) and not isinstance(job_id, bool):
        job_id = str(job_id)
    elif not isinstance(job_id, str):
        raise ProtocolError("mining.submit: job_id must be a string")
    en2 = _hex(params[2], "extranonce2")
    if len(en2) > MAX_EXTRANONCE2_SIZE:
        raise ProtocolError(f"extranonce2: {len(en2)} bytes is too long")
    ntime = _u32(params[3], "ntime")
    nonce = _u32(params[4], "nonce")
    vbits = _u32(params[5], "version_bits") if len(params) > 5 and params[5] is not None else None
    return ev.Submit(worker, job_id, en2, ntime, nonce, vbits, rid)


def _submit_patterns() -> tuple[re.Pattern[bytes], ...]:
    """The submit lines miners send, as regular expressions over the raw line.

    Matched: the keys ``id`` (an unsigned integer), ``method`` and ``params`` in any order,
    JSON whitespace between tokens, worker and job id in printable ASCII without escapes,
    hex fields within their sizes, optional version bits. Anything else (escapes, more keys,
    a string id, odd sizes) is left to the JSON path, so a match never decodes a line
    differently from it. Quantifiers are possessive: a miss fails fast.
    """
    ws = rb"[ \t\r\n]*+"
    sep = ws + b"," + ws

    def text(name: bytes) -> bytes:  # printable ASCII without quote or backslash
        return rb'"(?P<%s>[\x20\x21\x23-\x5b\x5d-\x7e]*+)"' % name

    def u32(name: bytes) -> bytes:
        return rb'"(?P<%s>[0-9a-fA-F]{1,8}+)"' % name

    extranonce2 = rb'"(?P<en2>[0-9a-fA-F]{0,%d}+)"' % (2 * MAX_EXTRANONCE2_SIZE)
    fields = (text(b"worker"), text(b"job"), extranonce2, u32(b"ntime"), u32(b"nonce"))
    params = (
        rb'"params"' + ws + b":" + ws + rb"\[" + ws + sep.join(fields)
        + b"(?:" + sep + u32(b"vbits") + b")?" + ws + rb"\]"
    )  # fmt: skip
    rid = rb'"id"' + ws + b":" + ws + rb"(?P<id>0|[1-9][0-9]{0,17}+)"
    method = rb'"method"' + ws + b":" + ws + rb'"mining\.submit"'
    return tuple(
        re.compile(rb"\{" + ws + sep.join(order) + ws + rb"\}")
        for order in itertools.permutations((rid, method, params))
    )


_SUBMIT_PATTERNS = _submit_patterns()
_SUBMIT_GROUPS = ("worker", "job", "en2", "ntime", "nonce", "vbits", "id")


def match_submit(line: bytes) -> ev.Submit | None:
    """A ``mining.submit`` line decoded without JSON (the hot path: one per share), or None
    for any other line; `parse_line` and `decode_client_request` then decide."""
    for pattern in _SUBMIT_PATTERNS:
        m = pattern.fullmatch(line)
        if m is not None:
            worker, job, en2, ntime, nonce, vbits, rid = m.group(*_SUBMIT_GROUPS)
            if len(en2) & 1:
                return None  # odd hex: the JSON path names the error
            return ev.Submit(
                worker.decode("ascii"),
                job.decode("ascii"),
                unhexlify(en2),
                int(ntime, 16),
                int(nonce, 16),
                None if vbits is None else int(vbits, 16),
                int(rid),
            )
    return None


# ---- messages the client receives --------------------------------------------------------


def decode_server_message(obj: dict[str, Any], method: str, rid: ev.RequestId | None) -> Any:
    params = _params(obj, method)
    if method == "mining.notify":
        return decode_notify(params)
    if method == "mining.set_difficulty":
        _need(params, 1, method)
        return ev.SetDifficulty(_difficulty(params[0]))
    if method == "mining.set_extranonce":
        _need(params, 2, method)
        return ev.SetExtranonce(
            _hex(params[0], "extranonce1"),
            _int(params[1], "extranonce2_size", 0, MAX_EXTRANONCE2_SIZE),
        )
    if method == "mining.set_version_mask":
        _need(params, 1, method)
        return ev.SetVersionMask(_u32(params[0], "mask"))
    if method == "client.reconnect":
        host = _opt_str(params[0], "host") if params else None
        port = _port(params[1]) if len(params) > 1 and params[1] is not None else None
        wait = None
        if len(params) > 2 and params[2] is not None:
            wait = _int(_intish(params[2], "wait"), "wait", 0, 86400 * 365)
        return ev.Reconnect(host or None, port, wait)
    if method == "client.show_message":
        _need(params, 1, method)
        return ev.ShowMessage(_str(params[0], "message"))
    if method == "mining.ping" and rid is not None:
        return ev.Ping(rid)
    if method == "client.get_version" and rid is not None:
        return ev.GetVersion(rid)
    return ev.UnknownMethod(method, params, rid)


def _intish(v: Any, name: str) -> int:
    if isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= 10:
        return int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"{name}: expected an integer")
    return v


def _port(v: Any) -> int:
    return _int(_intish(v, "port"), "port", 1, 65535)


def decode_notify(params: list[Any]) -> ev.Notify:
    if len(params) < 9:
        raise ProtocolError(f"mining.notify: expected 9 params, got {len(params)}")
    job_id = params[0]
    if not isinstance(job_id, str):
        raise ProtocolError("mining.notify: job_id must be a string")
    prevhash = swap_words(_hex(params[1], "prevhash", 32))
    branch = params[4]
    if not isinstance(branch, list):
        raise ProtocolError("mining.notify: merkle_branch must be an array")
    if len(branch) > MAX_MERKLE_BRANCH:
        raise ProtocolError(f"mining.notify: merkle branch of {len(branch)} is too deep")
    clean = params[8]
    if isinstance(clean, int) and not isinstance(clean, bool) and clean in (0, 1):
        clean = bool(clean)
    if not isinstance(clean, bool):
        raise ProtocolError("mining.notify: clean_jobs must be a boolean")
    return ev.Notify(
        job_id=job_id,
        prevhash=prevhash,
        coinb1=_hex(params[2], "coinb1"),
        coinb2=_hex(params[3], "coinb2"),
        merkle_branch=tuple(_hex(h, "merkle_branch", 32) for h in branch),
        version=_u32(params[5], "version"),
        nbits=_u32(params[6], "nbits"),
        ntime=_u32(params[7], "ntime"),
        clean_jobs=clean,
    )


def decode_response(request: Any, rid: ev.RequestId, obj: dict[str, Any]) -> Any:
    """A response to ``request`` (the event we sent under ``rid``) → its result event."""
    result = obj.get("result")
    error = _rpc_error(obj.get("error"))
    if isinstance(request, ev.Submit):
        return ev.SubmitResult(rid, result is True and error is None, error, request)
    if isinstance(request, ev.Authorize):
        return ev.AuthorizeResult(rid, result is True and error is None, error, request)
    if error is not None and result in (None, False):
        return ev.ErrorResponse(rid, error, request)
    if isinstance(request, ev.Subscribe):
        return _decode_subscribe_result(rid, result, request)
    if isinstance(request, ev.Configure):
        return _decode_configure_result(rid, result, request)
    if isinstance(request, ev.Ping):
        return ev.Pong(rid, request)
    if isinstance(request, ev.GetVersion):
        return ev.VersionResult(rid, _str(result, "version"), request)
    return ev.Ack(rid, result, request)


def _decode_subscribe_result(rid: ev.RequestId, result: Any, request: Any) -> ev.SubscribeResult:
    if not isinstance(result, list) or len(result) < 3:
        raise ProtocolError("mining.subscribe result: expected [subscriptions, en1, en2_size]")
    subs_raw = result[0]
    subs: list[tuple[str, str]] = []
    if isinstance(subs_raw, list):
        items = subs_raw if subs_raw and isinstance(subs_raw[0], list) else [subs_raw]
        for item in items:
            if (
                isinstance(item, list)
                and len(item) >= 2
                and isinstance(item[0], str)
                and isinstance(item[1], str)
            ):
                subs.append((item[0], item[1]))
    return ev.SubscribeResult(
        rid,
        _hex(result[1], "extranonce1"),
        _int(result[2], "extranonce2_size", 0, MAX_EXTRANONCE2_SIZE),
        tuple(subs),
        request,
    )


def _decode_configure_result(rid: ev.RequestId, result: Any, request: Any) -> ev.ConfigureResult:
    if not isinstance(result, dict):
        raise ProtocolError("mining.configure result: expected an object")
    extra = dict(result)
    rolling = extra.pop(ev.VERSION_ROLLING, None)
    if rolling is not None and not isinstance(rolling, bool):
        raise ProtocolError("mining.configure result: version-rolling must be a boolean")
    mask_raw = extra.pop(ev.VERSION_ROLLING_MASK, None)
    mask = _u32(mask_raw, ev.VERSION_ROLLING_MASK) if mask_raw is not None else None
    return ev.ConfigureResult(rid, rolling, mask, extra, request)


# ---- encoding ----------------------------------------------------------------------------


def _request(rid: ev.RequestId | None, method: str, params: list[Any]) -> dict[str, Any]:
    return {"id": rid, "method": method, "params": params}


def _response(rid: ev.RequestId, result: Any, error: ev.RpcError | None = None) -> dict[str, Any]:
    err = None if error is None else [error.code, error.message, error.data]
    return {"id": rid, "result": result, "error": err}


def _u32_hex(v: int) -> str:
    return f"{v & 0xFFFFFFFF:08x}"


def encode_event(event: Any) -> dict[str, Any]:
    """Any event → its JSON-RPC object. Requests must already carry their ``req_id``."""
    if type(event) is ev.SubmitResult:  # the most frequent event by far: skip the match
        return _response(event.req_id, event.accepted, event.error)
    match event:
        case ev.Submit():
            params = [
                event.worker,
                event.job_id,
                event.extranonce2.hex(),
                _u32_hex(event.ntime),
                _u32_hex(event.nonce),
            ]
            if event.version_bits is not None:
                params.append(_u32_hex(event.version_bits))
            return _request(event.req_id, "mining.submit", params)
        case ev.Notify():
            return _request(
                None,
                "mining.notify",
                [
                    event.job_id,
                    swap_words(event.prevhash).hex(),
                    event.coinb1.hex(),
                    event.coinb2.hex(),
                    [h.hex() for h in event.merkle_branch],
                    _u32_hex(event.version),
                    _u32_hex(event.nbits),
                    _u32_hex(event.ntime),
                    event.clean_jobs,
                ],
            )
        case ev.Subscribe():
            sub_params: list[Any] = []
            if event.user_agent is not None or event.session_id is not None:
                sub_params.append(event.user_agent or "")
            if event.session_id is not None:
                sub_params.append(event.session_id)
            return _request(event.req_id, "mining.subscribe", sub_params)
        case ev.Authorize():
            return _request(event.req_id, "mining.authorize", [event.username, event.password])
        case ev.Configure():
            return _request(
                event.req_id, "mining.configure", [list(event.extensions), dict(event.params)]
            )
        case ev.SuggestDifficulty():
            return _request(event.req_id, "mining.suggest_difficulty", [_num(event.difficulty)])
        case ev.ExtranonceSubscribe():
            return _request(event.req_id, "mining.extranonce.subscribe", [])
        case ev.Ping():
            return _request(event.req_id, "mining.ping", [])
        case ev.GetVersion():
            return _request(event.req_id, "client.get_version", [])
        case ev.SetDifficulty():
            return _request(None, "mining.set_difficulty", [_num(event.difficulty)])
        case ev.SetExtranonce():
            return _request(
                None, "mining.set_extranonce", [event.extranonce1.hex(), event.extranonce2_size]
            )
        case ev.SetVersionMask():
            return _request(None, "mining.set_version_mask", [_u32_hex(event.mask)])
        case ev.Reconnect():
            rc: list[Any] = []
            if event.host is not None or event.port is not None or event.wait_seconds is not None:
                rc = [event.host, event.port, event.wait_seconds]
                while rc and rc[-1] is None:
                    rc.pop()
            return _request(None, "client.reconnect", rc)
        case ev.ShowMessage():
            return _request(None, "client.show_message", [event.message])
        case ev.SubscribeResult():
            subs = [list(s) for s in event.subscriptions]
            return _response(event.req_id, [subs, event.extranonce1.hex(), event.extranonce2_size])
        case ev.AuthorizeResult():
            return _response(event.req_id, event.authorized, event.error)
        case ev.ConfigureResult():
            res: dict[str, Any] = {}
            if event.version_rolling is not None:
                res[ev.VERSION_ROLLING] = event.version_rolling
            if event.version_rolling_mask is not None:
                res[ev.VERSION_ROLLING_MASK] = _u32_hex(event.version_rolling_mask)
            res.update(event.extra)
            return _response(event.req_id, res)
        case ev.SubmitResult():
            return _response(event.req_id, event.accepted, event.error)
        case ev.Ack():
            return _response(event.req_id, event.result)
        case ev.ErrorResponse():
            return _response(event.req_id, None, event.error)
        case ev.Pong():
            return _response(event.req_id, "pong")
        case ev.VersionResult():
            return _response(event.req_id, event.version)
        case ev.UnknownMethod():
            return _request(event.req_id, event.method, event.params)
    raise TypeError(f"not a Stratum V1 event: {event!r}")


def _num(v: float) -> int | float:
    """Send whole difficulties as integers: some miners choke on ``1024.0``."""
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else v

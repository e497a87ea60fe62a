"""Method registry and JSON-RPC request handling (1.0 and 2.0, single and batch).

Methods are plain functions ``fn(ctx, *params)``; their signatures give the
parameter names (for named-parameter calls), the required count, and the types
checked before the call, so a bad call gets Core's error code without reaching
node code.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.rpc.errors import RpcCode, RpcError

log = logging.getLogger(__name__)

_JSON_TYPES = {
    int: "number",
    float: "number",
    str: "string",
    bool: "bool",
    list: "array",
    dict: "object",
}


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    fn: Callable[..., Any]
    params: tuple[inspect.Parameter, ...]
    types: tuple[tuple[type, ...] | None, ...]
    required: int

    @property
    def usage(self) -> str:
        names = [
            p.name if p.default is inspect.Parameter.empty else f"( {p.name} )" for p in self.params
        ]
        return " ".join([self.name, *names])


def _allowed_types(annotation: Any) -> tuple[type, ...] | None:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    args = typing.get_args(annotation) or (annotation,)
    allowed = tuple(a for a in args if a in _JSON_TYPES)
    return allowed or None


class Dispatcher:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.methods: dict[str, Method] = {}

    def register(self, fn: Callable[..., Any], name: str | None = None) -> None:
        hints = typing.get_type_hints(fn)
        params = tuple(inspect.signature(fn).parameters.values())[1:]  # drop ctx
        types = tuple(_allowed_types(hints.get(p.name, inspect.Parameter.empty)) for p in params)
        required = sum(1 for p in params if p.default is inspect.Parameter.empty)
        method = Method(name or fn.__name__, fn, params, types, required)
        self.methods[method.name] = method

    def register_module(self, module: Any) -> None:
        for fn in getattr(module, "METHODS", ()):
            self.register(fn)

    def call(self, name: str, params: Any) -> Any:
        method = self.methods.get(name)
        if method is None:
            raise RpcError(RpcCode.METHOD_NOT_FOUND, "Method not found")
        args = self._bind(method, params)
        return method.fn(self.ctx, *args)

    def _bind(self, method: Method, params: Any) -> list[Any]:
        if params is None:
            params = []
        if isinstance(params, dict):
            names = [p.name for p in method.params]
            unknown = set(params) - set(names)
            if unknown:
                raise RpcError(
                    RpcCode.INVALID_PARAMETER, f"Unknown named parameter {sorted(unknown)[0]}"
                )
            args = []
            for p in method.params:
                if p.name in params:
                    args.append(params[p.name])
                elif p.default is inspect.Parameter.empty:
                    raise RpcError(
                        RpcCode.INVALID_PARAMETER, f"Missing required parameter {p.name}"
                    )
                else:
                    args.append(p.default)
            # Trailing defaults are left to the function.
            while (
                args
                and len(args) > method.required
                and args[-1] is method.params[len(args) - 1].default
            ):
                args.pop()
        elif isinstance(params, list):
            args = list(params)
        else:
            raise RpcError(RpcCode.INVALID_REQUEST, "Params must be an array or object")
        if not method.required <= len(args) <= len(method.params):
            raise RpcError(RpcCode.MISC_ERROR, f"Usage: {method.usage}")
        for value, param, allowed in zip(args, method.params, method.types, strict=False):
            if allowed is None or (value is None and param.default is None):
                continue
            ok = isinstance(value, allowed) and not (
                isinstance(value, bool) and bool not in allowed
            )
            if int in allowed and isinstance(value, float) and value.is_integer():
                ok = True
            if not ok:
                got = _JSON_TYPES.get(type(value), type(value).__name__)
                want = _JSON_TYPES[allowed[0]]
                raise RpcError(
                    RpcCode.TYPE_ERROR,
                    f"JSON value of type {got} for field {param.name} is not of expected type {want}",
                )
        return args

    # -- JSON-RPC envelopes --------------------------------------------------------------
    def handle_single(self, request: Any) -> tuple[dict | None, int]:
        """(response object or None for a 2.0 notification, HTTP status for 1.0 errors)."""
        if not isinstance(request, dict):
            err = RpcError(RpcCode.INVALID_REQUEST, "Invalid Request object")
            return {"result": None, "error": err.to_json(), "id": None}, 400
        v2 = request.get("jsonrpc") == "2.0"
        req_id = request.get("id")
        notification = v2 and "id" not in request
        try:
            method = request.get("method")
            if not isinstance(method, str):
                raise RpcError(RpcCode.INVALID_REQUEST, "Method must be a string")
            result = self.call(method, request.get("params"))
            error = None
            status = 200
        except RpcError as exc:
            result, error = None, exc.to_json()
            status = {RpcCode.INVALID_REQUEST: 400, RpcCode.METHOD_NOT_FOUND: 404}.get(
                exc.code, 500
            )
        except Exception as exc:  # a bug in a method must not kill the server
            log.exception("RPC %r failed", request.get("method"))
            result, error = (
                None,
                {"code": RpcCode.INTERNAL_ERROR, "message": f"Internal error: {exc}"},
            )
            status = 500
        if notification:
            return None, 204
        if v2:
            body = {"jsonrpc": "2.0", "id": req_id}
            body["error" if error else "result"] = error or result
            return body, 200
        return {"result": result, "error": error, "id": req_id}, status

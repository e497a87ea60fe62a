"""Server control: stop, help."""

from __future__ import annotations

from node.rpc.context import NodeContext
from node.rpc.errors import RpcCode, RpcError


def stop(ctx: NodeContext) -> str:
    if ctx.request_stop is None:
        raise RpcError(RpcCode.MISC_ERROR, "This node cannot be stopped over RPC")
    ctx.request_stop()
    return "Bitcoin server stopping"


def help(ctx: NodeContext, command: str = "") -> str:
    methods = ctx.dispatcher.methods  # type: ignore[attr-defined]
    if command:
        method = methods.get(command)
        if method is None:
            return f"help: unknown command: {command}"
        doc = (method.fn.__doc__ or "").strip()
        return f"{method.usage}\n\n{doc}".strip()
    return "\n".join(sorted(m.usage for m in methods.values()))


METHODS = [stop, help]

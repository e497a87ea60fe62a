"""Network calls: getnetworkinfo, getpeerinfo, getconnectioncount, addnode."""

from __future__ import annotations

from typing import Any

from node.net.p2p_node import USER_AGENT
from node.rpc.context import NodeContext
from node.rpc.errors import RpcCode, RpcError
from protocols.bitcoin.p2p.messages import PROTOCOL_VERSION, Services

VERSION_NUMBER = 10000  # 0.1.0 as Core encodes versions (MMmmpp)


def _services(ctx: NodeContext) -> int:
    pruned = ctx.chain.policy.enabled
    return int(
        Services.NODE_WITNESS | (Services.NODE_NETWORK_LIMITED if pruned else Services.NODE_NETWORK)
    )


def _service_names(bits: int) -> list[str]:
    return [flag.name for flag in Services if flag.name and bits & flag]


def getnetworkinfo(ctx: NodeContext) -> dict[str, Any]:
    peers = ctx.on_loop(lambda: list(ctx.p2p.peers.values())) if ctx.p2p is not None else []
    inbound = sum(1 for s in peers if s.conn.inbound)
    services = _services(ctx)
    return {
        "version": VERSION_NUMBER,
        "subversion": USER_AGENT.decode(),
        "protocolversion": PROTOCOL_VERSION,
        "localservices": f"{services:016x}",
        "localservicesnames": _service_names(services),
        "localrelay": True,
        "timeoffset": 0,
        "networkactive": ctx.p2p is not None,
        "connections": len(peers),
        "connections_in": inbound,
        "connections_out": len(peers) - inbound,
        "networks": [],
        "relayfee": 0.00001,
        "incrementalfee": 0.00001,
        "localaddresses": [],
        "warnings": [],
    }


def getpeerinfo(ctx: NodeContext) -> list[dict[str, Any]]:
    if ctx.p2p is None:
        return []
    return ctx.on_loop(ctx.p2p.peer_info)


def getconnectioncount(ctx: NodeContext) -> int:
    if ctx.p2p is None:
        return 0
    return ctx.on_loop(lambda: len(ctx.p2p.peers))


def addnode(ctx: NodeContext, node: str, command: str) -> None:
    p2p = ctx.need_p2p()
    if command not in ("add", "remove", "onetry"):
        raise RpcError(
            RpcCode.INVALID_PARAMETER, "Error: Command must be one of: add, remove, onetry"
        )
    host, sep, port = node.rpartition(":")
    if not sep:
        host, port = node, str(p2p.network.default_port)
    try:
        target = (host, int(port))
    except ValueError:
        raise RpcError(
            RpcCode.CLIENT_INVALID_IP_OR_SUBNET, f"Invalid node address: {node}"
        ) from None
    if command == "onetry":  # Core: one attempt, never an error, never remembered
        ctx.on_loop(lambda: p2p.add_node(target, persistent=False))
        return None
    if command == "remove":
        if not ctx.on_loop(lambda: p2p.remove_node(target)):
            raise RpcError(
                RpcCode.CLIENT_NODE_NOT_ADDED,
                "Error: Node could not be removed. It has not been added previously.",
            )
        return None
    if not ctx.on_loop(lambda: p2p.add_node(target, persistent=True)):
        raise RpcError(RpcCode.CLIENT_NODE_ALREADY_ADDED, "Error: Node already added")
    return None


METHODS = [getnetworkinfo, getpeerinfo, getconnectioncount, addnode]

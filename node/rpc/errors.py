"""Bitcoin Core's RPC error codes, and the exception methods raise to return one."""

from __future__ import annotations

import enum


class RpcCode(enum.IntEnum):
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    PARSE_ERROR = -32700
    MISC_ERROR = -1
    TYPE_ERROR = -3
    INVALID_ADDRESS_OR_KEY = -5
    OUT_OF_MEMORY = -7
    INVALID_PARAMETER = -8
    DATABASE_ERROR = -20
    DESERIALIZATION_ERROR = -22
    VERIFY_ERROR = -25
    VERIFY_REJECTED = -26
    VERIFY_ALREADY_IN_CHAIN = -27
    IN_WARMUP = -28
    METHOD_DEPRECATED = -32
    CLIENT_NOT_CONNECTED = -9
    CLIENT_IN_INITIAL_DOWNLOAD = -10
    CLIENT_NODE_ALREADY_ADDED = -23
    CLIENT_NODE_NOT_ADDED = -24
    CLIENT_NODE_NOT_CONNECTED = -29
    CLIENT_INVALID_IP_OR_SUBNET = -30


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message}

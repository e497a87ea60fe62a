"""Parameter helpers shared by the method modules (Core's error texts)."""

from __future__ import annotations

from node.rpc.errors import RpcCode, RpcError
from protocols.bitcoin.hashes import hex_to_hash


def parse_hash(value: str, name: str = "blockhash") -> bytes:
    try:
        if len(value) != 64:
            raise ValueError
        return hex_to_hash(value)
    except ValueError:
        raise RpcError(
            RpcCode.INVALID_PARAMETER,
            f"{name} must be of length 64 (not {len(value)}, for '{value}')"
            if len(value) != 64
            else f"{name} must be hexadecimal string (not '{value}')",
        ) from None


def parse_hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise RpcError(RpcCode.DESERIALIZATION_ERROR, f"{what} decode failed") from None

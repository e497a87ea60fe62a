"""One class per P2P message: ``parse(payload)`` and ``serialize()``.

Blocks and transactions travel as their parsed ``protocols.bitcoin`` objects;
everything else is a small frozen dataclass. Limits that Bitcoin Core enforces
on counts (inventory 50,000, headers 2,000, addresses 1,000, locators 101) are
enforced while parsing, before any allocation they would cause.
"""

from __future__ import annotations

import abc
import enum
import struct
from dataclasses import dataclass, field
from typing import ClassVar

from protocols.bitcoin.block import HEADER_SIZE, Block, BlockHeader
from protocols.bitcoin.compact import compact_size, read_compact_size
from protocols.bitcoin.errors import DecodeError
from protocols.bitcoin.p2p.errors import MalformedMessage
from protocols.bitcoin.tx import Tx

PROTOCOL_VERSION = 70016
MIN_PEER_PROTO_VERSION = 31800
MAX_INV_SIZE = 50_000
MAX_HEADERS_RESULTS = 2_000
MAX_ADDR_TO_SEND = 1_000
MAX_LOCATOR_SZ = 101
MAX_SUBVERSION_LENGTH = 256
MAX_ADDRV2_SIZE = 512


class Services(enum.IntFlag):
    NODE_NETWORK = 1
    NODE_BLOOM = 1 << 2
    NODE_WITNESS = 1 << 3
    NODE_COMPACT_FILTERS = 1 << 6
    NODE_NETWORK_LIMITED = 1 << 10
    NODE_P2P_V2 = 1 << 11


class InvType(enum.IntEnum):
    ERROR = 0
    TX = 1
    BLOCK = 2
    FILTERED_BLOCK = 3
    CMPCT_BLOCK = 4
    WTX = 5
    WITNESS_TX = 0x40000001
    WITNESS_BLOCK = 0x40000002


class _Reader:
    """Bounds-checked reads over one payload; every failure is a MalformedMessage."""

    __slots__ = ("buf", "pos", "what")

    def __init__(self, buf: bytes, what: str) -> None:
        self.buf = buf
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise MalformedMessage(f"{self.what}: truncated")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def unpack(self, fmt: struct.Struct) -> tuple:
        try:
            values = fmt.unpack_from(self.buf, self.pos)
        except struct.error:
            raise MalformedMessage(f"{self.what}: truncated") from None
        self.pos += fmt.size
        return values

    def compact(self, limit: int) -> int:
        try:
            n, self.pos = read_compact_size(self.buf, self.pos)
        except DecodeError as exc:
            raise MalformedMessage(f"{self.what}: {exc}") from None
        if n > limit:
            raise MalformedMessage(f"{self.what}: count {n} above {limit}")
        return n

    def var_bytes(self, limit: int) -> bytes:
        return self.take(self.compact(limit))

    def at_end(self) -> bool:
        return self.pos >= len(self.buf)

    def finish(self) -> None:
        if self.pos != len(self.buf):
            raise MalformedMessage(f"{self.what}: {len(self.buf) - self.pos} trailing bytes")


_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_PORT = struct.Struct(">H")


class Message(abc.ABC):
    """Base of all messages; subclasses set ``command``."""

    __slots__ = ()
    command: ClassVar[bytes]

    @classmethod
    @abc.abstractmethod
    def parse(cls, payload: bytes) -> Message: ...

    @abc.abstractmethod
    def serialize(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class NetAddr:
    """Address as in ``version``/``addr``: services, IPv6-mapped address, port (big-endian)."""

    services: int = 0
    ip: bytes = b"\x00" * 10 + b"\xff\xff" + b"\x7f\x00\x00\x01"
    port: int = 0

    @classmethod
    def read(cls, r: _Reader) -> NetAddr:
        (services,) = r.unpack(_U64)
        ip = r.take(16)
        (port,) = r.unpack(_PORT)
        return cls(services, ip, port)

    def serialize(self) -> bytes:
        return _U64.pack(self.services) + self.ip + _PORT.pack(self.port)

    @classmethod
    def ipv4(cls, dotted: str, port: int, services: int = 0) -> NetAddr:
        octets = bytes(int(p) for p in dotted.split("."))
        return cls(services, b"\x00" * 10 + b"\xff\xff" + octets, port)

    @property
    def host(self) -> str:
        if self.ip[:12] == b"\x00" * 10 + b"\xff\xff":
            return ".".join(str(b) for b in self.ip[12:])
        return ":".join(self.ip[i : i + 2].hex() for i in range(0, 16, 2))


@dataclass(frozen=True, slots=True)
class Version(Message):
    command: ClassVar[bytes] = b"version"
    version: int = PROTOCOL_VERSION
    services: int = 0
    timestamp: int = 0
    addr_recv: NetAddr = field(default_factory=NetAddr)
    addr_from: NetAddr = field(default_factory=NetAddr)
    nonce: int = 0
    user_agent: bytes = b"/blvm:0.1.0/"
    start_height: int = 0
    relay: bool = True

    @classmethod
    def parse(cls, payload: bytes) -> Version:
        r = _Reader(payload, "version")
        (version,) = r.unpack(_I32)
        (services,) = r.unpack(_U64)
        (timestamp,) = r.unpack(_I64)
        addr_recv = NetAddr.read(r)
        # Very old peers stop here; we require the full message (MIN_PEER_PROTO_VERSION).
        addr_from = NetAddr.read(r)
        (nonce,) = r.unpack(_U64)
        user_agent = r.var_bytes(MAX_SUBVERSION_LENGTH)
        (start_height,) = r.unpack(_I32)
        relay = True
        if not r.at_end():
            (flag,) = r.unpack(_U8)
            relay = bool(flag)
        return cls(
            version,
            services,
            timestamp,
            addr_recv,
            addr_from,
            nonce,
            user_agent,
            start_height,
            relay,
        )

    def serialize(self) -> bytes:
        return b"".join(
            (
                _I32.pack(self.version),
                _U64.pack(self.services),
                _I64.pack(self.timestamp),
                self.addr_recv.serialize(),
                self.addr_from.serialize(),
                _U64.pack(self.nonce),
                compact_size(len(self.user_agent)),
                self.user_agent,
                _I32.pack(self.start_height),
                b"\x01" if self.relay else b"\x00",
            )
        )


@dataclass(frozen=True, slots=True)
class _Empty(Message):
    """Messages without a payload."""

    @classmethod
    def parse(cls, payload: bytes) -> _Empty:
        # Core ignores extra bytes on these; so do we, so newer peers are not dropped.
        return cls()

    def serialize(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Verack(_Empty):
    command: ClassVar[bytes] = b"verack"


@dataclass(frozen=True, slots=True)
class SendHeaders(_Empty):
    command: ClassVar[bytes] = b"sendheaders"


@dataclass(frozen=True, slots=True)
class WtxidRelay(_Empty):
    command: ClassVar[bytes] = b"wtxidrelay"


@dataclass(frozen=True, slots=True)
class SendAddrV2(_Empty):
    command: ClassVar[bytes] = b"sendaddrv2"


@dataclass(frozen=True, slots=True)
class GetAddr(_Empty):
    command: ClassVar[bytes] = b"getaddr"


@dataclass(frozen=True, slots=True)
class MempoolRequest(_Empty):
    command: ClassVar[bytes] = b"mempool"


@dataclass(frozen=True, slots=True)
class _Nonce(Message):
    nonce: int = 0

    @classmethod
    def parse(cls, payload: bytes) -> _Nonce:
        r = _Reader(payload, cls.command.decode())
        (nonce,) = r.unpack(_U64)
        return cls(nonce)

    def serialize(self) -> bytes:
        return _U64.pack(self.nonce)


@dataclass(frozen=True, slots=True)
class Ping(_Nonce):
    command: ClassVar[bytes] = b"ping"


@dataclass(frozen=True, slots=True)
class Pong(_Nonce):
    command: ClassVar[bytes] = b"pong"


@dataclass(frozen=True, slots=True)
class FeeFilter(Message):
    command: ClassVar[bytes] = b"feefilter"
    feerate: int = 0  # sat per 1000 vbytes

    @classmethod
    def parse(cls, payload: bytes) -> FeeFilter:
        r = _Reader(payload, "feefilter")
        (feerate,) = r.unpack(_I64)
        return cls(feerate)

    def serialize(self) -> bytes:
        return _I64.pack(self.feerate)


@dataclass(frozen=True, slots=True)
class SendCmpct(Message):
    command: ClassVar[bytes] = b"sendcmpct"
    announce: bool = False
    version: int = 2

    @classmethod
    def parse(cls, payload: bytes) -> SendCmpct:
        r = _Reader(payload, "sendcmpct")
        (announce,) = r.unpack(_U8)
        (version,) = r.unpack(_U64)
        return cls(bool(announce), version)

    def serialize(self) -> bytes:
        return _U8.pack(int(self.announce)) + _U64.pack(self.version)


@dataclass(frozen=True, slots=True)
class InvItem:
    type: int
    hash: bytes  # internal byte order


_INV = struct.Struct("<I32s")


@dataclass(frozen=True, slots=True)
class _InvList(Message):
    items: tuple[InvItem, ...] = ()

    @classmethod
    def parse(cls, payload: bytes) -> _InvList:
        r = _Reader(payload, cls.command.decode())
        n = r.compact(MAX_INV_SIZE)
        items = tuple(InvItem(*r.unpack(_INV)) for _ in range(n))
        r.finish()
        return cls(items)

    def serialize(self) -> bytes:
        return compact_size(len(self.items)) + b"".join(
            _INV.pack(i.type, i.hash) for i in self.items
        )


@dataclass(frozen=True, slots=True)
class Inv(_InvList):
    command: ClassVar[bytes] = b"inv"


@dataclass(frozen=True, slots=True)
class GetData(_InvList):
    command: ClassVar[bytes] = b"getdata"


@dataclass(frozen=True, slots=True)
class NotFound(_InvList):
    command: ClassVar[bytes] = b"notfound"


@dataclass(frozen=True, slots=True)
class _Locator(Message):
    version: int = PROTOCOL_VERSION
    locator: tuple[bytes, ...] = ()
    stop: bytes = b"\x00" * 32

    @classmethod
    def parse(cls, payload: bytes) -> _Locator:
        r = _Reader(payload, cls.command.decode())
        (version,) = r.unpack(_U32)
        n = r.compact(MAX_LOCATOR_SZ)
        locator = tuple(r.take(32) for _ in range(n))
        stop = r.take(32)
        r.finish()
        return cls(version, locator, stop)

    def serialize(self) -> bytes:
        return (
            _U32.pack(self.version)
            + compact_size(len(self.locator))
            + b"".join(self.locator)
            + self.stop
        )


@dataclass(frozen=True, slots=True)
class GetHeaders(_Locator):
    command: ClassVar[bytes] = b"getheaders"


@dataclass(frozen=True, slots=True)
class GetBlocks(_Locator):
    command: ClassVar[bytes] = b"getblocks"


@dataclass(frozen=True, slots=True)
class Headers(Message):
    command: ClassVar[bytes] = b"headers"
    headers: tuple[BlockHeader, ...] = ()

    @classmethod
    def parse(cls, payload: bytes) -> Headers:
        r = _Reader(payload, "headers")
        n = r.compact(MAX_HEADERS_RESULTS)
        out = []
        for _ in range(n):
            out.append(BlockHeader.parse(r.take(HEADER_SIZE)))
            if r.compact(0) != 0:  # each header carries a zero transaction count
                raise MalformedMessage("headers: non-zero transaction count")
        r.finish()
        return cls(tuple(out))

    def serialize(self) -> bytes:
        return compact_size(len(self.headers)) + b"".join(
            h.serialize() + b"\x00" for h in self.headers
        )


@dataclass(frozen=True, slots=True)
class TxMessage(Message):
    command: ClassVar[bytes] = b"tx"
    tx: Tx

    @classmethod
    def parse(cls, payload: bytes) -> TxMessage:
        try:
            return cls(Tx.from_bytes(payload))
        except DecodeError as exc:
            raise MalformedMessage(f"tx: {exc}") from None

    def serialize(self) -> bytes:
        return self.tx.serialize()


@dataclass(frozen=True, slots=True)
class BlockMessage(Message):
    command: ClassVar[bytes] = b"block"
    block: Block

    @classmethod
    def parse(cls, payload: bytes) -> BlockMessage:
        try:
            return cls(Block.from_bytes(payload))
        except DecodeError as exc:
            raise MalformedMessage(f"block: {exc}") from None

    def serialize(self) -> bytes:
        return self.block.serialize()


@dataclass(frozen=True, slots=True)
class TimedAddr:
    time: int
    addr: NetAddr


@dataclass(frozen=True, slots=True)
class Addr(Message):
    command: ClassVar[bytes] = b"addr"
    addrs: tuple[TimedAddr, ...] = ()

    @classmethod
    def parse(cls, payload: bytes) -> Addr:
        r = _Reader(payload, "addr")
        n = r.compact(MAX_ADDR_TO_SEND)
        out = []
        for _ in range(n):
            (t,) = r.unpack(_U32)
            out.append(TimedAddr(t, NetAddr.read(r)))
        r.finish()
        return cls(tuple(out))

    def serialize(self) -> bytes:
        return compact_size(len(self.addrs)) + b"".join(
            _U32.pack(a.time) + a.addr.serialize() for a in self.addrs
        )


class AddrNetwork(enum.IntEnum):
    """BIP155 network ids and their address lengths."""

    IPV4 = 1
    IPV6 = 2
    TORV2 = 3
    TORV3 = 4
    I2P = 5
    CJDNS = 6


ADDRV2_LENGTHS = {
    AddrNetwork.IPV4: 4,
    AddrNetwork.IPV6: 16,
    AddrNetwork.TORV2: 10,
    AddrNetwork.TORV3: 32,
    AddrNetwork.I2P: 32,
    AddrNetwork.CJDNS: 16,
}


@dataclass(frozen=True, slots=True)
class AddrV2Entry:
    time: int
    services: int
    network: int
    addr: bytes
    port: int


@dataclass(frozen=True, slots=True)
class AddrV2(Message):
    command: ClassVar[bytes] = b"addrv2"
    addrs: tuple[AddrV2Entry, ...] = ()

    @classmethod
    def parse(cls, payload: bytes) -> AddrV2:
        r = _Reader(payload, "addrv2")
        n = r.compact(MAX_ADDR_TO_SEND)
        out = []
        for _ in range(n):
            (t,) = r.unpack(_U32)
            services = r.compact(2**64 - 1)
            (net,) = r.unpack(_U8)
            addr = r.var_bytes(MAX_ADDRV2_SIZE)
            expected = ADDRV2_LENGTHS.get(net)  # type: ignore[call-overload]
            if expected is not None and len(addr) != expected:
                raise MalformedMessage(f"addrv2: network {net} address of {len(addr)} bytes")
            (port,) = r.unpack(_PORT)
            out.append(AddrV2Entry(t, services, net, addr, port))
        r.finish()
        return cls(tuple(out))

    def serialize(self) -> bytes:
        parts = [compact_size(len(self.addrs))]
        for a in self.addrs:
            parts += (
                _U32.pack(a.time),
                compact_size(a.services),
                _U8.pack(a.network),
                compact_size(len(a.addr)),
                a.addr,
                _PORT.pack(a.port),
            )
        return b"".join(parts)


MESSAGES: dict[bytes, type[Message]] = {
    cls.command: cls
    for cls in (
        Version,
        Verack,
        SendHeaders,
        WtxidRelay,
        SendAddrV2,
        GetAddr,
        MempoolRequest,
        Ping,
        Pong,
        FeeFilter,
        SendCmpct,
        Inv,
        GetData,
        NotFound,
        GetHeaders,
        GetBlocks,
        Headers,
        TxMessage,
        BlockMessage,
        Addr,
        AddrV2,
    )
}


@dataclass(frozen=True, slots=True)
class UnknownMessage(Message):
    """A command we do not handle; Bitcoin Core ignores these, and so do we."""

    command: ClassVar[bytes] = b""
    name: bytes = b""
    payload: bytes = b""

    @classmethod
    def parse(cls, payload: bytes) -> UnknownMessage:
        return cls(b"", payload)

    def serialize(self) -> bytes:
        return self.payload


def decode_message(command: bytes, payload: bytes) -> Message:
    cls = MESSAGES.get(command)
    if cls is None:
        return UnknownMessage(command, payload)
    return cls.parse(payload)

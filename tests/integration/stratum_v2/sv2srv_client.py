"""A small asyncio SV2 mining client over `protocols.sv2` (the initiator side), for tests and
the bench: handshake, SetupConnection, channels, and CPU mining of jobs at easy targets."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import time
from dataclasses import dataclass

from protocols.bitcoin.merkle import root_from_branch
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    Protocol,
    SetNewPrevHash,
    SetupConnection,
    SubmitSharesExtended,
    SubmitSharesStandard,
)
from protocols.sv2.messages.base import Message

MAX = (1 << 256) - 1


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@dataclass(slots=True)
class ChannelView:
    """What a client knows about one of its channels."""

    channel_id: int
    target: int
    extranonce_prefix: bytes
    extranonce_size: int = 0
    standard: bool = True
    group_channel_id: int = 0
    job: NewMiningJob | NewExtendedMiningJob | None = None
    prevhash: SetNewPrevHash | None = None


class Sv2TestClient:
    def __init__(self, reader, writer, conn: Sv2Connection) -> None:
        self.reader, self.writer, self.conn = reader, writer, conn
        self.inbox: list[object] = []
        self.jobs: dict[int, list[Message]] = {}
        self.sequence = 0

    @classmethod
    async def connect(cls, port: int, authority: bytes | None, host="127.0.0.1"):
        reader, writer = await asyncio.open_connection(host, port)
        conn = Sv2Connection.initiator(authority, now=int(time.time()))
        writer.write(conn.initiate())
        client = cls(reader, writer, conn)
        await client.expect(HandshakeComplete)
        return client

    async def setup(self, flags: int = 0) -> Message:
        self.send(
            SetupConnection(Protocol.MINING, 2, 2, flags, "127.0.0.1", 0, "blvm-test", "", "", "")
        )
        return await self.next()

    def send(self, message: Message) -> None:
        self.writer.write(self.conn.send(message))

    async def next(self, timeout: float = 10.0) -> object:
        if self.inbox:
            return self.inbox.pop(0)
        async with asyncio.timeout(timeout):
            while True:
                event = self.conn.next_event()
                if event is not None:
                    return event
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("server closed the connection")
                reply = self.conn.receive_data(data, now=int(time.time()))
                if reply:
                    self.writer.write(reply)

    async def expect(
        self,
        kind: type,
        timeout: float = 10.0,
        channel_id: int | None = None,
        channel_ids: tuple[int, ...] = (),
    ):
        """Next event of `kind` (for `channel_id` or any of `channel_ids`); others are kept."""
        wanted = channel_ids + ((channel_id,) if channel_id is not None else ())
        kept: list[object] = []
        try:
            while True:
                event = await self.next(timeout)
                if isinstance(event, kind) and (
                    not wanted or getattr(event, "channel_id", None) in wanted
                ):
                    return event
                kept.append(event)
        finally:
            self.inbox[:0] = kept

    async def open_standard(self, user="w", hashrate=0.0, max_target=MAX, request_id=1):
        self.send(
            OpenStandardMiningChannel(request_id, user, hashrate, max_target.to_bytes(32, "little"))
        )
        ok = await self.expect(OpenStandardMiningChannelSuccess | OpenMiningChannelError)
        if isinstance(ok, OpenMiningChannelError):
            raise RuntimeError(ok.error_code)
        return ChannelView(
            ok.channel_id,
            int.from_bytes(ok.target, "little"),
            ok.extranonce_prefix,
            group_channel_id=ok.group_channel_id,
        )

    async def open_extended(self, user="w", hashrate=0.0, max_target=MAX, request_id=2, min_size=8):
        self.send(
            OpenExtendedMiningChannel(
                request_id, user, hashrate, max_target.to_bytes(32, "little"), min_size
            )
        )
        ok = await self.expect(OpenExtendedMiningChannelSuccess | OpenMiningChannelError)
        if isinstance(ok, OpenMiningChannelError):
            raise RuntimeError(ok.error_code)
        return ChannelView(
            ok.channel_id,
            int.from_bytes(ok.target, "little"),
            ok.extranonce_prefix,
            ok.extranonce_size,
            standard=False,
        )

    async def await_work(self, view: ChannelView) -> None:
        """Wait for a job and its SetNewPrevHash on this channel or its group (clean pair)."""
        ids = (view.channel_id, view.group_channel_id) if view.group_channel_id else ()
        ids = ids or (view.channel_id,)
        job = await self.expect(NewMiningJob | NewExtendedMiningJob, channel_ids=ids)
        prev = await self.expect(SetNewPrevHash, channel_ids=ids)
        assert prev.job_id == job.job_id and job.min_ntime is None
        view.job, view.prevhash = job, prev

    def close(self) -> None:
        self.writer.close()


def header(view: ChannelView, extranonce: bytes, nonce: int) -> bytes:
    job, prev = view.job, view.prevhash
    if isinstance(job, NewExtendedMiningJob):
        coinbase = (
            job.coinbase_tx_prefix + view.extranonce_prefix + extranonce + job.coinbase_tx_suffix
        )
        root = root_from_branch(sha256d(coinbase), list(job.merkle_path))
    else:
        root = job.merkle_root
    return (
        struct.pack("<I", job.version)
        + prev.prev_hash
        + root
        + struct.pack("<III", prev.min_ntime, prev.nbits, nonce)
    )


def mine(
    view: ChannelView,
    target: int,
    *,
    start: int = 0,
    above: int = -1,
    extranonce: bytes | None = None,
):
    """A share message whose hash is in (above, target]; returns (message, hash value)."""
    if extranonce is None:
        extranonce = bytes(view.extranonce_size)
    nonce = start
    while True:
        value = int.from_bytes(sha256d(header(view, extranonce, nonce)), "little")
        if above < value <= target:
            break
        nonce += 1
    job, prev = view.job, view.prevhash
    if not view.standard:
        msg = SubmitSharesExtended(
            view.channel_id, nonce, job.job_id, nonce, prev.min_ntime, job.version, extranonce
        )
    else:
        msg = SubmitSharesStandard(
            view.channel_id, nonce, job.job_id, nonce, prev.min_ntime, job.version
        )
    return msg, value

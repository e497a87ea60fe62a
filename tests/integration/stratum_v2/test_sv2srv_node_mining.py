"""Our SV2 server over a real regtest Chainstate, driven by our own SV2 client (Noise).

Standard and extended channels mine real shares; a share that meets the regtest target is a
block that the chainstate connects, after which both channels get clean jobs on the new tip
and shares on the old job are stale. Garbage on one connection closes only that one.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from protocols.sv2 import keys as sv2keys
from protocols.sv2.messages import (
    NewExtendedMiningJob,
    NewMiningJob,
    SetTarget,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesSuccess,
)
from tests.integration.stratum_v2.sv2srv_client import MAX, Sv2TestClient, mine


async def _serve(source, keys, **cfg):
    config = Sv2ServerConfig(host="127.0.0.1", port=0, ack_interval=0.05, **cfg)
    server = Sv2Server(source, keys.static_secret, keys.certificate, config)
    await server.start()
    return server


def test_standard_and_extended_channels_mine_a_block(node) -> None:
    chain, source, keys = node
    authority = sv2keys.decode_authority_public_key(keys.authority_public)

    async def scenario() -> None:
        server = await _serve(source, keys)
        try:
            client = await Sv2TestClient.connect(server.port, authority)
            assert isinstance(await client.setup(), SetupConnectionSuccess)
            std = await client.open_standard("alice.std")
            ext = await client.open_extended("alice.ext")
            assert std.target == MAX and len(std.extranonce_prefix) == 20
            assert len(ext.extranonce_prefix) == 4 and ext.extranonce_size == 16
            for view in (std, ext):
                await client.await_work(view)
            # no REQUIRES_STANDARD_JOBS: the standard channel's job comes via its group
            assert isinstance(std.job, NewExtendedMiningJob)
            assert std.job.channel_id == std.group_channel_id != 0
            assert ext.job.channel_id == ext.channel_id
            network = 2**255  # regtest 0x207fffff is about 2^255
            # A share that is not a block on each channel: accepted and acknowledged.
            for view in (std, ext):
                share, _value = mine(view, MAX, above=network)
                client.send(share)
                ack = await client.expect(SubmitSharesSuccess, channel_id=view.channel_id)
                assert ack.new_submits_accepted_count == 1
                assert ack.last_sequence_number == share.sequence_number
            assert chain.tip.height == 0
            # A block-meeting share on the standard channel.
            old_job = std.job
            share, _ = mine(std, network // 2, start=share.nonce + 1)
            client.send(share)
            await client.expect(SubmitSharesSuccess, channel_id=std.channel_id)
            for view in (std, ext):
                await client.await_work(view)
                assert view.prevhash.prev_hash == chain.tip.hash
            assert chain.tip.height == 1
            assert server.counters.blocks_accepted == 1
            # The old job is now stale.
            stale = type(share)(**{**_fields(share), "job_id": old_job.job_id, "nonce": 1})
            client.send(stale)
            err = await client.expect(SubmitSharesError)
            assert err.error_code == "stale-share"
            # Mine a second block on the extended channel, on the new tip.
            share, _ = mine(ext, network // 2, extranonce=os.urandom(16))
            client.send(share)
            await client.await_work(ext)
            assert chain.tip.height == 2
            status = server.status()
            assert status["workers"]["alice.std"]["blocks_found"] == 1
            assert status["workers"]["alice.ext"]["blocks_found"] == 1
            client.close()
        finally:
            await server.close()

    asyncio.run(scenario())


def _fields(msg) -> dict:
    return {name: getattr(msg, name) for name, _ in msg.FIELDS}


def test_garbage_closes_only_that_connection(node) -> None:
    _chain, source, keys = node
    authority = sv2keys.decode_authority_public_key(keys.authority_public)

    async def scenario() -> None:
        server = await _serve(source, keys)
        try:
            good = await Sv2TestClient.connect(server.port, authority)
            await good.setup()
            view = await good.open_standard("good")
            await good.await_work(view)
            bad = await Sv2TestClient.connect(server.port, authority)
            await bad.setup()
            bad.writer.write(os.urandom(200))  # not a valid encrypted frame
            with pytest.raises(ConnectionError):
                await bad.next(timeout=5)
            # plain garbage before any handshake, too
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\n" * 8)
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
            share, _ = mine(view, MAX, above=2**255)
            good.send(share)
            ack = await good.expect(SubmitSharesSuccess)
            assert ack.new_submits_accepted_count == 1
            assert server.counters.closed_protocol_error >= 1
            assert server.counters.connections == 1
            good.close()
        finally:
            await server.close()

    asyncio.run(scenario())


def test_batched_acks_and_vardiff_set_target(node) -> None:
    _chain, source, keys = node

    async def scenario() -> None:
        server = await _serve(source, keys, ack_batch=5, shares_per_minute=6.0)
        try:
            client = await Sv2TestClient.connect(server.port, None)
            await client.setup()
            view = await client.open_standard("flood")
            await client.await_work(view)
            nonce = 0
            for _ in range(30):  # far faster than 6/min: vardiff must raise the difficulty
                share, _ = mine(view, MAX, above=2**255, start=nonce)
                nonce = share.nonce + 1
                client.send(share)
            set_target = await client.expect(SetTarget, channel_id=view.channel_id)
            assert int.from_bytes(set_target.maximum_target, "little") < MAX // 4
            acked = 0
            while acked < 24:  # everything before the retarget is acknowledged in batches
                ack = await client.expect(SubmitSharesSuccess)
                assert ack.new_submits_accepted_count <= 5
                acked += ack.new_submits_accepted_count
            stats = server.workers["flood"]
            for _ in range(100):  # the last shares may still be in flight
                if stats.accepted + sum(stats.rejected.values()) == 30:
                    break
                await asyncio.sleep(0.02)
            worker = server.status()["workers"]["flood"]
            # after the retarget, shares mined for the old target may be too weak
            assert worker["accepted"] >= 24
            assert worker["accepted"] + worker["rejected"].get("difficulty-too-low", 0) == 30
            client.close()
        finally:
            await server.close()

    asyncio.run(scenario())


def test_requires_standard_jobs_gets_per_channel_merkle_roots(node) -> None:
    _chain, source, keys = node

    async def scenario() -> None:
        server = await _serve(source, keys)
        try:
            client = await Sv2TestClient.connect(server.port, None)
            await client.setup(flags=1)  # REQUIRES_STANDARD_JOBS, as SRI's mining_device
            views = [await client.open_standard(f"dev{i}", request_id=i) for i in range(2)]
            for view in views:
                view.group_channel_id = 0  # no group jobs expected
                await client.await_work(view)
                assert isinstance(view.job, NewMiningJob)
            assert views[0].job.merkle_root != views[1].job.merkle_root
            for view in views:
                share, _ = mine(view, MAX, above=2**255)
                client.send(share)
                ack = await client.expect(SubmitSharesSuccess, channel_id=view.channel_id)
                assert ack.new_submits_accepted_count == 1
            client.close()
        finally:
            await server.close()

    asyncio.run(scenario())

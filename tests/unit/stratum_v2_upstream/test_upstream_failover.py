"""Failover decisions with an injected clock and scripted upstreams of our own interface."""

from __future__ import annotations

import asyncio

from appliance.stratum_v2.upstream.base import UpstreamShare
from appliance.stratum_v2.upstream.failover import FailoverSource, HealthPolicy
from tests.unit.stratum_v2_upstream.upstream_fakes import SPACE, ScriptedUpstream, work

POLICY = HealthPolicy(
    connect_timeout=10, no_job_timeout=60, max_reject_ratio=0.5, min_shares=4, retry_after=30
)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Clocked(FailoverSource):
    """`step(t)` also moves the injected clock, so work arrival times follow the test."""

    def __init__(self, ups) -> None:
        self.now = 0.0
        super().__init__(ups, SPACE, POLICY, clock=lambda: self.now)

    def step(self, now: float) -> None:
        self.now = now
        super().step(now)


def make(n: int = 2):
    ups = [ScriptedUpstream(f"u{i}") for i in range(n)]
    seen: list = []
    fo = Clocked(ups)
    fo.subscribe(seen.append)
    return ups, fo, seen


def run(coro) -> None:
    asyncio.run(coro)


def test_primary_becomes_active_and_work_is_restamped() -> None:
    async def main() -> None:
        (a, b), fo, seen = make()
        fo.step(0)
        await settle()
        assert a.runs == 1 and b.runs == 0  # one at a time down the list
        a.deliver(work(77))
        fo.step(1)
        assert fo.active is not None and fo.active.upstream is a
        assert len(seen) == 1 and fo.current() is seen[0]
        assert seen[0].template_id == 1
        a.deliver(work(78))
        assert len(seen) == 2 and seen[1].template_id == seen[0].template_id + 1
        await fo.close()

    run(main())


def test_connect_timeout_moves_down_the_list() -> None:
    async def main() -> None:
        (a, b), fo, seen = make()
        fo.step(0)
        await settle()
        fo.step(5)
        await settle()
        assert b.runs == 0
        fo.step(11)  # a gave no work within 10 s
        await settle()
        assert a.state.value == "closed" and b.runs == 1
        b.deliver(work(1))
        fo.step(12)
        assert fo.active.upstream is b and seen[-1].prev_hash == work(1).prev_hash
        assert fo.slots[0].last_reason == "no work within the connect timeout"
        await fo.close()

    run(main())


def test_crash_fails_over_and_primary_returns_when_healthy() -> None:
    async def main() -> None:
        (a, b), fo, _ = make()
        fo.step(0)
        await settle()
        a.deliver(work(1, prev=1))
        fo.step(1)
        a.crash()
        await settle()
        fo.step(2)
        await settle()
        assert fo.active is None and b.runs == 1
        b.deliver(work(5, prev=2))
        fo.step(3)
        assert fo.active.upstream is b
        fo.step(20)  # primary still resting (retry_after 30)
        await settle()
        assert a.runs == 1
        fo.step(33)  # rested: probed as a standby while b keeps mining
        await settle()
        assert a.runs == 2 and fo.active.upstream is b
        a.deliver(work(9, prev=3))
        assert fo.current().prev_hash == work(5, prev=2).prev_hash  # standby work not used
        fo.step(34)
        await settle()
        assert fo.active.upstream is a and fo.current().prev_hash == work(9, prev=3).prev_hash
        assert b.state.value == "closed"
        assert [h[1:] for h in fo.counters.history][-1] == ("u0", "active")
        await fo.close()

    run(main())


def test_no_job_timeout_and_reject_ratio() -> None:
    async def main() -> None:
        (a, b, c), fo, _ = make(3)
        fo.step(0)
        await settle()
        a.deliver(work(1))
        fo.step(1)
        # a: no new job for more than 60 s
        fo.step(61)
        await settle()
        assert fo.slots[0].last_reason.startswith("no new job")
        b.deliver(work(2))
        fo.step(62)
        assert fo.active.upstream is b
        b.stats.accepted += 1
        b.stats.rejected += 2  # 3 results: under min_shares, tolerated
        fo.step(63)
        assert fo.active.upstream is b
        b.stats.rejected += 1  # 3 of 4 rejected
        fo.step(64)
        await settle()
        assert fo.active is None and "rejected" in fo.slots[1].last_reason
        assert c.runs == 1  # a rests until 91, b until 94: c is next
        await fo.close()

    run(main())


def test_share_sink_maps_back_to_the_active_upstream_only() -> None:
    async def main() -> None:
        (a, b), fo, seen = make()
        fo.step(0)
        await settle()
        a.deliver(work(40))
        fo.step(1)
        ours = seen[-1]
        share = UpstreamShare(ours.template_id, b"\0\0\0\7abcd", 0x20000000, 5, 9, 123)
        fo.share_sink(share)
        assert len(a.shares) == 1
        sent = a.shares[0]
        assert sent.template_id == 40 and sent.extranonce == b"\0\0\0\7abcd"
        assert (sent.version, sent.ntime, sent.nonce, sent.hash_value) == (0x20000000, 5, 9, 123)
        # work of an upstream we left is not forwarded
        a.crash()
        await settle()
        fo.step(2)
        await settle()
        fo.share_sink(share)
        assert len(a.shares) == 1 and b.shares == []
        assert fo.submit_block(object()) == "no-active-upstream"
        await fo.close()

    run(main())


def test_reject_ratio_only_counts_the_recent_window() -> None:
    async def main() -> None:
        ups = [ScriptedUpstream("u0"), ScriptedUpstream("u1")]
        policy = HealthPolicy(
            connect_timeout=10, no_job_timeout=1e9, min_shares=4, reject_window=100
        )
        now = [0.0]
        fo = FailoverSource(ups, SPACE, policy, clock=lambda: now[0])
        a = ups[0]
        fo.step(0)
        await settle()
        a.deliver(work(1))
        fo.step(1)
        a.stats.rejected += 3  # a bad start: 3 of 3 rejected, under min_shares
        fo.step(2)
        a.stats.accepted += 10  # then a healthy stretch
        fo.step(60)
        fo.step(160)
        assert fo.active.upstream is a
        a.stats.accepted += 1
        a.stats.rejected += 3  # 3 of 4 since t=70 (since the start: 6 of 17)
        fo.step(170)
        await settle()
        assert fo.active is None and "3/4 shares rejected" in fo.slots[0].last_reason
        await fo.close()

    run(main())

"""Following the chain: removal on block connect, conflicts, re-admission on reorg."""

from __future__ import annotations

from node.chain.chainstate import BlockStatus
from node.mempool import RemovalReason
from tests.unit.mempool.mempool_tools import block_on, mine, spend


def _removals(env) -> list:
    out: list = []
    env.pool.add_removal_listener(lambda t, why: out.append((t, why)))
    return out


def test_block_removes_confirmed_keeps_children(env):
    a, a_outs = spend(env.mature(1), 2, fee=2_000)
    c, _ = spend(env.mature(1), 1)
    assert env.pool.accept(a).accepted and env.pool.accept(c).accepted
    b, _ = spend(a_outs[:1], 1)
    assert env.pool.accept(b).accepted
    removed = _removals(env)
    seq = env.pool.sequence
    mine(env.chain, [a, c], 3_000)
    assert set(removed) == {(a.txid, RemovalReason.BLOCK), (c.txid, RemovalReason.BLOCK)}
    assert env.pool.txids() == [b.txid]
    e = env.pool.get(b.txid)
    assert e.parents == set() and e.anc_count == 1 and e.anc_size == e.vsize
    assert env.pool.sequence > seq
    assert env.pool.info()["size"] == 1


def test_block_conflict_removes_spender_and_descendants(env):
    coin = env.mature(1)
    d, d_outs = spend(coin, 1, fee=1_000)
    d_child, _ = spend(d_outs, 1)
    other, _ = spend(env.mature(1), 1)
    for tx in (d, d_child, other):
        assert env.pool.accept(tx).accepted
    removed = _removals(env)
    rival, _ = spend(coin, 1, fee=500)  # a block may carry what our policy refused
    mine(env.chain, [rival], 500)
    assert set(removed) == {
        (d.txid, RemovalReason.CONFLICT),
        (d_child.txid, RemovalReason.CONFLICT),
    }
    assert env.pool.txids() == [other.txid]


def test_reorg_readmits_disconnected_transactions(env):
    base = env.chain.tip
    x, x_outs = spend(env.mature(1), 1, fee=2_000)
    assert env.pool.accept(x).accepted
    a1 = mine(env.chain, [x], 2_000, extra=b"A")
    assert len(env.pool) == 0
    y, _ = spend(x_outs, 1)  # spends the confirmed x
    assert env.pool.accept(y).accepted
    b1 = block_on(base.hash, base.height + 1, base.time + 2, extra=b"B")
    b2 = block_on(b1.hash, base.height + 2, base.time + 3, extra=b"B")
    assert env.chain.process_block(b1).tip_changed is False
    result = env.chain.process_block(b2)
    assert result.tip_changed and env.chain.tip.hash == b2.hash
    assert env.chain.get_utxo(x.inputs[0].prevout) is not None  # a1 undone
    assert set(env.pool.txids()) == {x.txid, y.txid}
    assert env.pool.txids()[0] == x.txid  # the parent first
    assert env.pool.get(y.txid).parents == {x.txid}
    assert env.pool.get(x.txid).desc_count == 2
    assert a1.hash != b2.hash


def test_reorg_drops_what_the_new_branch_invalidates(env):
    base = env.chain.tip
    coin = env.mature(1)
    x, x_outs = spend(coin, 1, fee=2_000)
    assert env.pool.accept(x).accepted
    mine(env.chain, [x], 2_000, extra=b"A")
    y, _ = spend(x_outs, 1)
    keep, _ = spend(env.mature(1), 1)
    assert env.pool.accept(y).accepted and env.pool.accept(keep).accepted
    removed = _removals(env)
    rival, _ = spend(coin, 1, fee=3_000)
    b1 = block_on(base.hash, base.height + 1, base.time + 2, [rival], 3_000, extra=b"B")
    b2 = block_on(b1.hash, base.height + 2, base.time + 3, extra=b"B")
    for blk in (b1, b2):
        assert env.chain.process_block(blk).status is BlockStatus.ACCEPTED
    assert env.chain.tip.hash == b2.hash
    assert env.pool.txids() == [keep.txid]
    assert (y.txid, RemovalReason.REORG) in removed
    assert env.pool.spender_of(coin[0].prevout) is None


def test_reorg_keeps_entry_times_and_deltas(env):
    base = env.chain.tip
    t, _ = spend(env.mature(1), 1)
    assert env.pool.accept(t, now=env.clock.now - 100).accepted
    env.pool.prioritise(t.txid, 777)
    b1 = block_on(base.hash, base.height + 1, base.time + 2, extra=b"B")
    b2 = block_on(b1.hash, base.height + 2, base.time + 3, extra=b"B")
    mine(env.chain, [], extra=b"A")
    for blk in (b1, b2):
        env.chain.process_block(blk)
    assert env.chain.tip.hash == b2.hash
    e = env.pool.get(t.txid)
    assert e is not None and e.time == int(env.clock.now - 100) and e.delta == 777


def test_empty_pool_does_not_read_connected_blocks(env, monkeypatch):
    """During initial sync the pool is empty: following the tip must cost nothing."""
    reads = []
    original = env.chain.get_block
    monkeypatch.setattr(env.chain, "get_block", lambda h: reads.append(h) or original(h))
    mine(env.chain, [], extra=b"ibd")
    assert reads == []
    tx, _ = spend(env.mature(1), 1)
    assert env.pool.accept(tx).accepted
    block = mine(env.chain, [tx], 1_000, extra=b"live")
    assert reads == [block.hash] and len(env.pool) == 0

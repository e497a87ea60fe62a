"""Acceptance of real signed spends, the entry statistics and the RPC-facing dicts."""

from __future__ import annotations

from node.mempool import RemovalReason
from node.mempool.policy import adjusted_vsize
from protocols.bitcoin.script import ScriptType, classify
from tests.unit.mempool.mempool_tools import spend


def test_accepts_signed_p2wpkh_and_p2tr_spends(env):
    coins = env.mature(2)
    kinds = {classify(c.output.script_pubkey)[0] for c in coins}
    assert kinds == {ScriptType.WITNESS_V0_KEYHASH, ScriptType.WITNESS_V1_TAPROOT}
    added = []
    env.pool.add_listener(added.append)
    for coin in coins:
        tx, _ = spend([coin], 2, fee=1_500)
        result = env.pool.accept(tx)
        assert result.accepted, result
        assert result.reason is None
        assert result.fee == 1_500
        assert result.vsize == tx.vsize  # no sigop adjustment for one key spend
        assert result.txid == tx.txid and result.wtxid == tx.wtxid
        entry = env.pool.get(tx.txid)
        assert entry is not None and entry.tx == tx and entry.fee == 1_500
    assert [e.txid for e in added] == [e.txid for e in env.pool.entries()]
    info = env.pool.info()
    assert info["size"] == 2
    assert info["bytes"] == sum(e.vsize for e in env.pool.entries())
    assert info["total_fee"] == 0.00003
    assert info["minrelaytxfee"] == 0.00001 and info["mempoolminfee"] == 0.00001
    assert info["fullrbf"] is True and info["loaded"] is True


def test_two_input_mixed_spend_and_unconfirmed_child(env):
    p2wpkh, p2tr = env.mature(2)
    parent, outs = spend([p2wpkh, p2tr], 3, fee=3_000)
    assert env.pool.accept(parent).accepted
    child, _ = spend(outs[:2], 1, fee=2_000)
    result = env.pool.accept(child)
    assert result.accepted, result
    info = env.pool.entry_info(child.txid)
    assert info["depends"] == [parent.txid_hex]
    assert info["ancestorcount"] == 2
    assert info["ancestorsize"] == result.vsize + env.pool.get(parent.txid).vsize
    assert info["fees"] == {
        "base": 0.00002,
        "modified": 0.00002,
        "ancestor": 0.00005,
        "descendant": 0.00002,
    }
    pinfo = env.pool.entry_info(parent.txid)
    assert pinfo["spentby"] == [child.txid_hex]
    assert pinfo["descendantcount"] == 2
    assert pinfo["height"] == env.chain.tip.height
    assert pinfo["time"] == int(env.clock.now)
    assert pinfo["wtxid"] == parent.wtxid[::-1].hex()
    assert env.pool.ancestors(child.txid) == {parent.txid}
    assert env.pool.descendants(parent.txid) == {child.txid}
    assert env.pool.spender_of(outs[0].prevout) == child.txid
    assert env.pool.get_by_wtxid(child.wtxid).txid == child.txid


def test_test_accept_changes_nothing(env):
    tx, _ = spend(env.mature(1), 1)
    before = env.pool.sequence
    result = env.pool.test_accept(tx)
    assert result.accepted and result.fee == 1_000
    assert len(env.pool) == 0 and env.pool.sequence == before
    d = result.to_dict()
    assert d["allowed"] is True and d["vsize"] == result.vsize
    assert d["fees"]["base"] == 0.00001


def test_prioritise_changes_modified_fees_and_package_stats(env):
    tx, outs = spend(env.mature(1), 1, fee=1_000)
    env.pool.prioritise(tx.txid, 5_000)  # before arrival: kept as a delta
    assert env.pool.accept(tx).accepted
    child, _ = spend(outs, 1, fee=1_000)
    assert env.pool.accept(child).accepted
    e = env.pool.get(tx.txid)
    assert e.modified_fee == 6_000 and e.fee == 1_000
    assert e.desc_fees == 7_000
    assert env.pool.get(child.txid).anc_fees == 7_000
    env.pool.prioritise(child.txid, -500)
    assert env.pool.get(tx.txid).desc_fees == 6_500


def test_removal_listener_and_sigop_adjusted_vsize(env):
    removed = []
    env.pool.add_removal_listener(lambda txid, why: removed.append((txid, why)))
    tx, _ = spend(env.mature(1), 1)
    assert env.pool.accept(tx).accepted
    replacement, _ = spend(
        [c for c in env.coins if c.prevout == tx.inputs[0].prevout], 1, fee=5_000
    )
    assert env.pool.accept(replacement).accepted
    assert removed == [(tx.txid, RemovalReason.REPLACED)]
    assert adjusted_vsize(400, 100) == 500  # 100 sigops x 20 bytes dominate the weight

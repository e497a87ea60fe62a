"""Full RBF (BIP125 rules 2-5 without signalling) and the ancestor/descendant limits."""

from __future__ import annotations

from node.mempool import RemovalReason
from tests.unit.mempool.mempool_tools import spend


def test_replacement_paying_more_replaces_with_descendants(env):
    coin = env.mature(1)
    original, outs = spend(coin, 2, fee=1_000, sequence=0xFFFFFFFF)  # no BIP125 signal
    assert env.pool.accept(original).accepted
    child, _ = spend(outs[:1], 1, fee=1_000)
    assert env.pool.accept(child).accepted
    removed = []
    env.pool.add_removal_listener(lambda t, why: removed.append((t, why)))
    better, _ = spend(coin, 1, fee=3_000)
    result = env.pool.accept(better)
    assert result.accepted, result
    assert set(result.replaced) == {original.txid, child.txid}
    assert set(removed) == {
        (original.txid, RemovalReason.REPLACED),
        (child.txid, RemovalReason.REPLACED),
    }
    assert [e.txid for e in env.pool.entries()] == [better.txid]


def test_replacement_refusals(env):
    coin = env.mature(1)
    original, outs = spend(coin, 2, fee=2_000)
    assert env.pool.accept(original).accepted
    same, _ = spend(coin, 2, fee=2_000, values=None)
    same.locktime = 1
    same.invalidate()
    assert env.pool.accept(same).reason == "insufficient fee"  # feerate not higher
    # Higher feerate (much smaller tx) but less absolute fee: rule 3.
    child, _ = spend(outs[:1], 1, fee=5_000)
    assert env.pool.accept(child).accepted
    small, _ = spend(coin, 1, fee=4_000)
    result = env.pool.accept(small)
    assert result.reason == "insufficient fee" and "less fees than conflicting" in result.message
    # Pays exactly the old total: not enough extra to pay for its own relay (rule 4).
    exact, _ = spend(coin, 1, fee=7_000)
    result = env.pool.accept(exact)
    assert result.reason == "insufficient fee" and "additional fees" in result.message
    enough, _ = spend(coin, 1, fee=7_000 + 200)
    assert env.pool.accept(enough).accepted


def test_replacement_adds_unconfirmed_and_spends_conflicting(env):
    a_coin, b_coin = env.mature(2)
    a, a_outs = spend([a_coin], 2, fee=1_000)
    b, b_outs = spend([b_coin], 1, fee=1_000)
    assert env.pool.accept(a).accepted and env.pool.accept(b).accepted
    # Replaces a, but also spends unconfirmed b: rule 2.
    r, _ = spend([a_coin, b_outs[0]], 1, fee=50_000)
    assert env.pool.accept(r).reason == "replacement-adds-unconfirmed"
    # Conflicts with a while spending a's own output.
    child, c_outs = spend(a_outs[:1], 1, fee=1_000)
    assert env.pool.accept(child).accepted
    r2, _ = spend([a_coin, c_outs[0]], 1, fee=50_000)
    assert env.pool.accept(r2).reason == "bad-txns-spends-conflicting-tx"


def test_too_many_replacements(make_env):
    env = make_env(descendant_limit=200, descendant_size_limit_kvb=1000)
    coin = env.mature(1)
    parent, outs = spend(coin, 100, fee=10_000)
    assert env.pool.accept(parent).accepted
    for out in outs:
        tx, _ = spend([out], 1, fee=1_000)
        assert env.pool.accept(tx).accepted
    assert len(env.pool) == 101
    r, _ = spend(coin, 1, fee=10_000_000)
    result = env.pool.accept(r)
    assert result.reason == "too many potential replacements"
    assert len(env.pool) == 101


def test_chain_of_25_then_too_long(env):
    coins = env.mature(1)
    chain = []
    for _ in range(25):
        tx, coins = spend(coins, 1, fee=1_000)
        result = env.pool.accept(tx)
        assert result.accepted, (len(chain), result)
        chain.append(tx)
    e = env.pool.get(chain[-1].txid)
    assert e.anc_count == 25 and env.pool.get(chain[0].txid).desc_count == 25
    tx, _ = spend(coins, 1, fee=1_000)
    result = env.pool.accept(tx)
    assert result.reason == "too-long-mempool-chain"
    assert "too many unconfirmed ancestors [limit: 25]" in result.message


def test_descendant_count_limit_and_cpfp_carve_out(env):
    parent, outs = spend(env.mature(1), 30, fee=5_000)
    assert env.pool.accept(parent).accepted
    for out in outs[:24]:
        tx, _ = spend([out], 1)
        assert env.pool.accept(tx).accepted
    assert env.pool.get(parent.txid).desc_count == 25
    # A 26th descendant is allowed once: small, and its only ancestor is the parent.
    carve, _ = spend([outs[24]], 1)
    assert env.pool.accept(carve).accepted
    tx, _ = spend([outs[25]], 1)
    result = env.pool.accept(tx)
    assert result.reason == "too-long-mempool-chain"
    assert "too many descendants" in result.message


def test_no_carve_out_with_two_ancestors(env):
    grand, outs = spend(env.mature(1), 1, fee=5_000)
    assert env.pool.accept(grand).accepted
    parent, outs = spend(outs, 30, fee=5_000)
    assert env.pool.accept(parent).accepted
    for out in outs[:23]:
        tx, _ = spend([out], 1)
        assert env.pool.accept(tx).accepted
    assert env.pool.get(grand.txid).desc_count == 25
    tx, _ = spend([outs[23]], 1)
    assert env.pool.accept(tx).reason == "too-long-mempool-chain"


def test_ancestor_size_limit(make_env):
    env = make_env(ancestor_size_limit_kvb=1)
    parent, outs = spend(env.mature(1), 5, fee=5_000)
    assert env.pool.accept(parent).accepted
    child, outs = spend(outs, 20, fee=5_000)
    result = env.pool.accept(child)
    assert result.reason == "too-long-mempool-chain" and "ancestor size" in result.message


def test_replacement_frees_descendant_room(env):
    """Limits are counted after removing what the replacement evicts."""
    parent, outs = spend(env.mature(1), 30, fee=5_000)
    assert env.pool.accept(parent).accepted
    kids = []
    for out in outs[:24]:
        tx, _ = spend([out], 1)
        assert env.pool.accept(tx).accepted
        kids.append(tx)
    r, _ = spend([outs[0]], 1, fee=5_000)  # replaces kid 0: parent stays at 25 descendants
    assert env.pool.accept(r).accepted, env.pool.accept(r)

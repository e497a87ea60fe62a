"""Block templates: package selection, limits, commitment, and blocks the chainstate accepts."""

from __future__ import annotations

from node.chain.chainstate import BlockStatus
from node.chain.params import REGTEST, block_subsidy
from node.chain.validation import witness_commitment_index, witness_merkle_root
from node.mining.assembler import solve
from node.mining.template import MAX_BLOCK_SIGOPS_COST, TemplateBuilder
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.script import multisig_script
from tests.unit.mempool.mempool_tools import MINER_SCRIPT, spend


def _mine_template(env, template):
    block = template.to_block(MINER_SCRIPT, b"\x01\x02")
    assert solve(block.header)
    result = env.chain.process_block(block)
    assert result.status is BlockStatus.ACCEPTED and result.tip_changed, result
    return block


def test_template_block_connects_and_pays_fees(env):
    parent, outs = spend(env.mature(1), 3, fee=4_000)
    kid1, _ = spend(outs[:1], 1, fee=1_500)
    kid2, _ = spend(outs[1:], 2, fee=2_500)
    other, _ = spend(env.mature(1), 2, fee=3_000)
    for tx in (parent, kid1, kid2, other):
        assert env.pool.accept(tx).accepted
    tpl = TemplateBuilder(env.chain, env.pool, clock=env.clock).build()
    assert tpl.height == env.chain.tip.height + 1
    assert tpl.previousblockhash == env.chain.tip.hash
    assert tpl.mintime == env.chain.tip.median_time_past + 1
    assert tpl.curtime >= tpl.mintime
    assert tpl.bits == 0x207FFFFF
    fees = sum(env.pool.get(t.txid).fee for t in tpl.transactions)
    assert tpl.total_fees == fees == 11_000
    assert tpl.coinbasevalue == block_subsidy(tpl.height, REGTEST) + fees
    position = {t.txid: i for i, t in enumerate(tpl.transactions, start=1)}
    assert len(position) == 4
    for t in tpl.transactions:
        parents = env.pool.get(t.txid).parents
        assert all(position[p] < position[t.txid] for p in parents)  # parent first
        assert sorted(set(t.depends)) == sorted(position[p] for p in parents)
        assert t.weight == t.tx.weight and t.sigops == env.pool.get(t.txid).sigop_cost
    assert tpl.transactions[position[kid2.txid] - 1].depends == (position[parent.txid],) * 2
    block = _mine_template(env, tpl)
    # The commitment the template advertised is the one in the block, and it is correct.
    idx = witness_commitment_index(block)
    commitment = block.txs[0].outputs[idx].script_pubkey
    assert commitment == tpl.default_witness_commitment
    assert commitment[6:] == sha256d(witness_merkle_root(block) + b"\x00" * 32)
    assert len(env.pool) == 0
    assert env.chain.get_utxo(block.txs[0].txid + b"\x00\x00\x00\x00").amount == tpl.coinbasevalue


def test_ancestor_feerate_selection_prefers_cpfp_package(env):
    cheap_parent, outs = spend(env.mature(1), 1, fee=200)
    rich_child, _ = spend(outs, 1, fee=30_000)
    middle, _ = spend(env.mature(1), 1, fee=8_000)
    low, _ = spend(env.mature(1), 1, fee=1_000)
    for tx in (cheap_parent, middle, low, rich_child):
        assert env.pool.accept(tx).accepted
    tpl = TemplateBuilder(env.chain, env.pool, clock=env.clock).build()
    order = [t.txid for t in tpl.transactions]
    assert order == [cheap_parent.txid, rich_child.txid, middle.txid, low.txid]
    # Raising the block minimum leaves out what pays less.
    strict = TemplateBuilder(env.chain, env.pool, clock=env.clock, block_min_feerate=20_000)
    assert [t.txid for t in strict.build().transactions] == order[:3]


def test_weight_limit_with_a_large_mempool(env):
    """Eleven ~93 kvB transactions (4.1 M weight) cannot all go into one block."""
    big = []
    for _ in range(11):
        coin = env.mature(1)[0]
        n = 3_000
        values = [10_000] * n
        values[-1] = coin.output.value - 10_000 * (n - 1) - 200_000
        tx, _ = spend([coin], values=values, scripts=[coin.key.p2wpkh] * n)
        result = env.pool.accept(tx)
        assert result.accepted, result
        big.append(tx)
    assert sum(tx.weight for tx in big) > 4_000_000
    builder = TemplateBuilder(env.chain, env.pool, clock=env.clock)
    tpl = builder.build()
    assert len(tpl.transactions) == 10
    assert tpl.total_weight + builder.reserved_weight <= 4_000_000
    block = _mine_template(env, tpl)
    assert block.weight <= 4_000_000
    assert len(env.pool) == 1
    assert builder.build().transactions[0].txid == env.pool.txids()[0]


def test_sigop_limit(env):
    txs = []
    for _ in range(5):
        coin = env.mature(1)[0]
        bare = multisig_script(1, [coin.key.pubkey])  # 80 sigop cost per output
        n = 199
        values = [1_000] * n + [coin.output.value - 1_000 * n - 200_000]
        tx, _ = spend([coin], values=values, scripts=[bare] * n + [coin.key.p2wpkh])
        result = env.pool.accept(tx)
        assert result.accepted, result
        txs.append(tx)
    assert all(env.pool.get(t.txid).sigop_cost in (199 * 80, 199 * 80 + 1) for t in txs)
    tpl = TemplateBuilder(env.chain, env.pool, clock=env.clock).build()
    assert len(tpl.transactions) == 4
    assert tpl.total_sigops + 400 < MAX_BLOCK_SIGOPS_COST
    _mine_template(env, tpl)


def test_cache_follows_mempool_and_tip(env):
    builder = TemplateBuilder(env.chain, env.pool, clock=env.clock)
    first = builder.build()
    assert first.transactions == ()
    env.clock.now += 5
    again = builder.build()
    assert again.transactions is first.transactions and again.curtime == first.curtime + 5
    tx, _ = spend(env.mature(1), 1)
    env.pool.accept(tx)
    with_tx = builder.build()
    assert [t.txid for t in with_tx.transactions] == [tx.txid]
    _mine_template(env, with_tx)
    after = builder.build()
    assert after.previousblockhash == env.chain.tip.hash and after.transactions == ()


def test_gbt_fields(env):
    tx, _ = spend(env.mature(1), 1)
    env.pool.accept(tx)
    tpl = TemplateBuilder(env.chain, env.pool, clock=env.clock).build()
    gbt = tpl.to_gbt()
    for key in [
        "version",
        "rules",
        "vbavailable",
        "vbrequired",
        "previousblockhash",
        "transactions",
        "coinbaseaux",
        "coinbasevalue",
        "longpollid",
        "target",
        "mintime",
        "mutable",
        "noncerange",
        "sigoplimit",
        "sizelimit",
        "weightlimit",
        "curtime",
        "bits",
        "height",
        "default_witness_commitment",
    ]:
        assert key in gbt, key
    assert gbt["rules"] == ["csv", "!segwit", "taproot"]
    assert gbt["bits"] == "207fffff"
    assert gbt["target"] == "7fffff" + "0" * 58
    assert gbt["noncerange"] == "00000000ffffffff"
    assert gbt["default_witness_commitment"].startswith("6a24aa21a9ed")
    entry = gbt["transactions"][0]
    assert entry["txid"] == tx.txid_hex and entry["hash"] == tx.wtxid[::-1].hex()
    assert entry["data"] == tx.serialize().hex() and entry["fee"] == 1_000
    assert entry["depends"] == [] and entry["weight"] == tx.weight

"""Every reject reason that a single transaction can hit, with Core's reason strings."""

from __future__ import annotations

import pytest

from node.mempool.policy import dust_threshold
from node.mining.workload import Coin
from protocols.bitcoin.script import multisig_script
from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint
from tests.unit.mempool.mempool_tools import mine, spend


def _reject(env, tx, reason: str) -> None:
    result = env.pool.accept(tx)
    assert not result.accepted
    assert result.reason == reason, (result.reason, result.message)
    dry = env.pool.test_accept(tx)
    assert dry.reason in (reason, "txn-already-in-mempool")


def test_already_in_mempool_and_same_nonwitness(env):
    tx, _ = spend(env.mature(1), 1)
    assert env.pool.accept(tx).accepted
    _reject(env, tx, "txn-already-in-mempool")
    twin = Tx.from_bytes(tx.serialize())
    twin.inputs[0].witness = [b"\x01" * 64]
    twin.invalidate()
    assert twin.txid == tx.txid and twin.wtxid != tx.wtxid
    _reject(env, twin, "txn-same-nonwitness-data-in-mempool")


def test_missing_inputs_is_an_orphan(env):
    coin = env.mature(1)[0]
    ghost = Coin(outpoint(b"\x42" * 32, 0), coin.output, coin.key, 0, False)
    tx, _ = spend([ghost], 1)
    result = env.pool.accept(tx)
    assert result.reason == "bad-txns-inputs-missingorspent" and result.missing_inputs


def test_already_confirmed_is_known(env):
    tx, _ = spend(env.mature(1), 1)
    mine(env.chain, [tx], 1_000)
    _reject(env, tx, "txn-already-known")


def test_locktime_in_the_future_is_non_final(env):
    height = env.chain.tip.height
    tx, _ = spend(env.mature(1), 1, locktime=height + 2, sequence=0xFFFFFFFE)
    _reject(env, tx, "non-final")
    ok, _ = spend(env.mature(1), 1, locktime=height, sequence=0xFFFFFFFE)
    assert env.pool.accept(ok).accepted
    final_seq, _ = spend(env.mature(1), 1, locktime=height + 50, sequence=0xFFFFFFFF)
    assert env.pool.accept(final_seq).accepted  # all inputs final: locktime ignored


def test_relative_lock_is_non_bip68_final(env):
    parent, outs = spend(env.mature(1), 1)
    assert env.pool.accept(parent).accepted
    child, _ = spend(outs, 1, sequence=1)  # needs the parent one block deep
    _reject(env, child, "non-BIP68-final")
    old = env.mature(1)  # confirmed > 100 blocks ago
    tx, _ = spend(old, 1, sequence=50)
    assert env.pool.accept(tx).accepted
    timed, _ = spend(env.mature(1), 1, sequence=(1 << 22) | 0xFFFF)  # ~1 year by time
    _reject(env, timed, "non-BIP68-final")
    v1, _ = spend(env.mature(1), 1, sequence=0xFFFF, version=1)  # BIP68 is only for v2+
    assert env.pool.accept(v1).accepted


def test_dust_output(env):
    coin = env.mature(1)[0]
    script = coin.key.p2wpkh
    limit = dust_threshold(TxOut(0, script))
    assert limit == 294
    total = coin.output.value
    tx, _ = spend([coin], values=[limit - 1, total - limit - 1000], scripts=[script, script])
    _reject(env, tx, "dust")
    ok, _ = spend([coin], values=[limit, total - limit - 1000], scripts=[script, script])
    assert env.pool.accept(ok).accepted


def test_nonstandard_output_script(env):
    tx, _ = spend(env.mature(1), 1, scripts=[b"\x51"])  # bare OP_TRUE
    _reject(env, tx, "scriptpubkey")


def test_oversize_and_undersize(env):
    coin = env.mature(1)[0]
    n = 3_300  # 31-byte P2WPKH outputs: more than 100,000 vbytes
    tx, _ = spend([coin], values=[1_000] * n, scripts=[coin.key.p2wpkh] * n, sign=False)
    _reject(env, tx, "tx-size")
    small, _ = spend([coin], values=[0], scripts=[b"\x6a"], fee=0, sign=False)
    assert small.base_size < 65
    _reject(env, small, "tx-size-small")


def test_too_many_sigops(env):
    coin = env.mature(1)[0]
    bare = multisig_script(1, [coin.key.pubkey])  # 20 legacy sigops, 80 cost each
    n = 201
    total = coin.output.value
    tx, _ = spend(
        [coin],
        values=[1_000] * n + [total - n * 1_000 - 100_000],
        scripts=[bare] * n + [coin.key.p2wpkh],
    )
    _reject(env, tx, "bad-txns-too-many-sigops")


def test_nonstandard_input(env):
    coin = env.mature(1)[0]
    funding, _ = spend([coin], 2, scripts=[b"\x51", coin.key.p2wpkh])
    mine(env.chain, [funding], 1_000)  # blocks take nonstandard outputs
    op_true = Coin(outpoint(funding.txid, 0), funding.outputs[0], coin.key, 0, False)
    tx = Tx(
        2,
        [TxIn(op_true.prevout, b"", 0xFFFFFFFD)],
        [TxOut(op_true.output.value - 1000, coin.key.p2wpkh)],
    )
    _reject(env, tx, "bad-txns-nonstandard-inputs")


def test_fee_floor(env):
    tx, _ = spend(env.mature(1), 1, fee=50)
    result = env.pool.accept(tx)
    assert result.reason == "min relay fee not met"
    assert "50 <" in result.message
    zero, _ = spend(env.mature(1), 1, fee=0)
    _reject(env, zero, "min relay fee not met")
    forced = env.pool.accept(zero, bypass_limits=True)
    assert forced.accepted


def test_max_feerate(env):
    tx, _ = spend(env.mature(1), 1, fee=50_000)  # ~450 sat/vB
    result = env.pool.test_accept(tx, max_feerate=100_000)
    assert result.reason == "max-fee-exceeded"
    assert env.pool.accept(tx, max_feerate=100_000).reason == "max-fee-exceeded"
    assert env.pool.accept(tx, max_feerate=1_000_000).accepted


def test_bad_signature_fails_scripts(env):
    for coin in env.mature(2):  # one ECDSA, one Schnorr
        tx, _ = spend([coin], 1)
        tx.outputs[0].value -= 1  # signed over the old value
        tx.invalidate()
        result = env.pool.accept(tx)
        assert result.reason.startswith("mandatory-script-verify-flag-failed ("), result
        assert result.reason.endswith(")")


def test_immature_coinbase(env):
    tip = env.chain.tip.height
    young = next(c for c in env.coins if c.height + 100 == tip + 2)
    tx, _ = spend([young], 1)
    _reject(env, tx, "bad-txns-premature-spend-of-coinbase")
    ripe = next(c for c in env.coins if c.height + 100 == tip + 1)
    ok, _ = spend([ripe], 1)
    assert env.pool.accept(ok).accepted


def test_consensus_failures(env):
    coin = env.mature(1)[0]
    total = coin.output.value
    tx, _ = spend([coin], values=[total + 1], scripts=[coin.key.p2wpkh])
    _reject(env, tx, "bad-txns-in-belowout")
    empty = Tx(2, [TxIn(coin.prevout)], [])
    _reject(env, empty, "bad-txns-vout-empty")
    dup = Tx(2, [TxIn(coin.prevout), TxIn(coin.prevout)], [TxOut(1000, coin.key.p2wpkh)])
    _reject(env, dup, "bad-txns-inputs-duplicate")


def test_coinbase_version_and_scriptsig_policy(env):
    from node.mining.assembler import create_coinbase

    cb = create_coinbase(500, 1000, env.mature(1)[0].key.p2wpkh, with_commitment=False)
    _reject(env, cb, "coinbase")
    v3, _ = spend(env.mature(1), 1, version=3)
    _reject(env, v3, "version")
    bad_sig, _ = spend(env.mature(1), 1, sign=False)
    bad_sig.inputs[0].script_sig = b"\x76"  # OP_DUP
    bad_sig.invalidate()
    _reject(env, bad_sig, "scriptsig-not-pushonly")


@pytest.mark.parametrize("annex", [b"\x50", b"\x50\x01\x02"])
def test_taproot_annex_is_nonstandard(env, annex):
    p2tr = next(c for c in env.coins[env.used :] if c.output.script_pubkey[0] == 0x51)
    env.coins.remove(p2tr)
    tx, _ = spend([p2tr], 1)
    tx.inputs[0].witness = [tx.inputs[0].witness[0], annex]
    tx.invalidate()
    _reject(env, tx, "bad-witness-nonstandard")


def test_conflict_without_replacement(env):
    coin = env.mature(1)
    a, _ = spend(coin, 1, fee=1_000)
    b, _ = spend(coin, 1, fee=9_000)
    assert env.pool.accept(a).accepted
    result = env.pool.accept(b, allow_replacement=False)
    assert result.reason == "txn-mempool-conflict"
    assert env.pool.get(a.txid) is not None

"""Chain parameters: genesis blocks rebuilt from their coinbases, subsidy schedule, lookup."""

from __future__ import annotations

import pytest

from node.chain import params as P
from node.chain.params import COIN, block_subsidy
from protocols.bitcoin.hashes import hash_to_hex
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.networks import get_network

GENESIS = {
    "mainnet": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    "testnet4": "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
    "signet": "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    "regtest": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
}

# BIP94 publishes the whole testnet4 genesis block.
TESTNET4_GENESIS_HEX = (
    "0100000000000000000000000000000000000000000000000000000000000000000000004e7b2b9128fe0291"
    "db0693af2ae418b767e657cd407e80cb1434221eaea7a07a046f3566ffff001dbb0c78170101000000010000"
    "000000000000000000000000000000000000000000000000000000000000ffffffff5504ffff001d01044c4c"
    "30332f4d61792f32303234203030303030303030303030303030303030303030316562643538633234343937"
    "3062336161396437383362623030313031316662653865613865393865303065ffffffff0100f2052a010000"
    "002321000000000000000000000000000000000000000000000000000000000000000000ac00000000"
)


@pytest.mark.parametrize("name", list(GENESIS))
def test_chain_params_genesis_matches_published_hash(name: str) -> None:
    p = P.get(name)
    assert hash_to_hex(p.genesis_hash) == GENESIS[name]
    block = p.genesis_block()
    assert block.hash == p.genesis_hash
    root, mutated = merkle_root([tx.txid for tx in block.txs])
    assert root == block.header.merkle_root and not mutated
    assert block.txs[0].outputs[0].value == 50 * COIN


def test_chain_params_testnet4_genesis_bytes_equal_bip94() -> None:
    assert P.TESTNET4.genesis_bytes.hex() == TESTNET4_GENESIS_HEX


def test_chain_params_rules_per_network() -> None:
    assert P.MAINNET.pow_limit_bits == 0x1D00FFFF
    assert P.SIGNET.pow_limit_bits == 0x1E0377AE
    assert P.REGTEST.pow_limit_bits == 0x207FFFFF
    assert P.TESTNET4.enforce_bip94 and P.TESTNET4.pow_allow_min_difficulty_blocks
    assert not P.MAINNET.pow_allow_min_difficulty_blocks and not P.MAINNET.enforce_bip94
    assert P.REGTEST.pow_no_retargeting and P.REGTEST.subsidy_halving_interval == 150
    assert P.MAINNET.taproot_height == 709632
    assert all(p.taproot_height == 0 for p in (P.TESTNET4, P.SIGNET, P.REGTEST))
    assert (P.MAINNET.bip34_height, P.MAINNET.bip66_height, P.MAINNET.bip65_height) == (
        227931,
        363725,
        388381,
    )
    assert (P.MAINNET.csv_height, P.MAINNET.segwit_height) == (419328, 481824)
    for p in P.ALL:
        assert p.difficulty_adjustment_interval == 2016
        assert p.coinbase_maturity == 100 and p.median_time_span == 11
        assert p.max_future_block_time == 7200
    assert P.MAINNET.prune_after_height == 100_000
    assert P.SIGNET.signet_challenge is not None and P.SIGNET.signet_challenge[:1] == b"\x51"


@pytest.mark.parametrize("p", P.ALL, ids=lambda p: p.name)
def test_chain_params_network_link(p: P.ChainParams) -> None:
    net = get_network(p.network)
    assert net is p.networks_entry()
    assert net.magic == p.message_start and net.default_port == p.default_port


def test_chain_params_get_by_alias_and_unknown() -> None:
    assert P.get("main") is P.MAINNET and P.get("MAINNET") is P.MAINNET
    assert P.get("test4") is P.TESTNET4
    with pytest.raises(KeyError, match="unknown chain"):
        P.get("testnet3")


def test_chain_params_block_subsidy() -> None:
    assert block_subsidy(0, P.MAINNET) == 50 * COIN
    assert block_subsidy(209_999, P.MAINNET) == 50 * COIN
    assert block_subsidy(210_000, P.MAINNET) == 25 * COIN
    assert block_subsidy(840_000, P.MAINNET) == 312_500_000
    assert block_subsidy(150, P.REGTEST) == 25 * COIN
    assert block_subsidy(64 * 210_000, P.MAINNET) == 0
    assert block_subsidy(33 * 210_000, P.MAINNET) == 0  # 50 BTC >> 33 rounds to zero
    total = sum(block_subsidy(h * 210_000, P.MAINNET) * 210_000 for h in range(64))
    assert total == 2_099_999_997_690_000


def test_chain_params_script_flag_exceptions() -> None:
    bip16 = bytes.fromhex("00000000000002dc756eebf4f49723ed8d30cc28a5f108eb94b1ba88ac4f9c22")[::-1]
    assert P.MAINNET.script_flag_exception(bip16) == 0
    assert P.MAINNET.script_flag_exception(P.MAINNET.genesis_hash) is None
    assert P.REGTEST.script_flag_exception(bip16) is None

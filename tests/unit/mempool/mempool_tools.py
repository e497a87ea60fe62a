"""Mempool test helpers: a regtest chain whose coinbases pay our keys, and signed spends.

``regtest_chain(n)`` mines ``n`` coinbase-only blocks with ``RegtestWorkload`` (P2WPKH and
P2TR payees alternate) and returns the blocks plus the coinbase coins with their keys;
``spend`` builds and signs a transaction over such coins (or over outputs of earlier
``spend`` results), so every test transaction carries real ECDSA/Schnorr signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST, block_subsidy
from node.mempool import Mempool
from node.mining.assembler import assemble_block, create_coinbase, solve
from node.mining.workload import Coin, RegtestWorkload
from protocols.bitcoin.block import Block
from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint

REGTEST_BITS = 0x207FFFFF
MINER_SCRIPT = b"\x00\x14" + b"\x11" * 20
T0 = 1_750_000_000  # the tests' "now"


@dataclass(slots=True)
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


def regtest_chain(n_blocks: int, seed: bytes = b"mempool-tests") -> tuple[list[bytes], list[Coin]]:
    """``n_blocks`` blocks on regtest genesis; the coinbase coins, oldest first."""
    w = RegtestWorkload(seed, keys=8)
    blocks = [w.next_block().serialize() for _ in range(n_blocks)]
    return blocks, list(w.spendable) + list(w.immature)


def spend(
    coins: Sequence[Coin],
    n_out: int = 1,
    fee: int = 1_000,
    *,
    scripts: Sequence[bytes] | None = None,
    values: Sequence[int] | None = None,
    sequence: int = 0xFFFFFFFD,
    locktime: int = 0,
    version: int = 2,
    sign: bool = True,
) -> tuple[Tx, list[Coin]]:
    """Spend ``coins`` into ``n_out`` equal outputs (or ``values``) paying the coins' keys."""
    total = sum(c.output.value for c in coins)
    if values is None:
        share = (total - fee) // n_out
        values = [share] * (n_out - 1) + [total - fee - share * (n_out - 1)]
    keys = [coins[i % len(coins)].key for i in range(len(values))]
    if scripts is None:
        scripts = [k.p2tr if i & 1 else k.p2wpkh for i, k in enumerate(keys)]
    outputs = [TxOut(v, s) for v, s in zip(values, scripts, strict=True)]
    tx = Tx(version, [TxIn(c.prevout, b"", sequence) for c in coins], outputs, locktime)
    if sign:
        RegtestWorkload.sign(tx, list(coins))
    tx.invalidate()
    created = [
        Coin(outpoint(tx.txid, n), out, key, 0, False)
        for n, (out, key) in enumerate(zip(outputs, keys, strict=True))
    ]
    return tx, created


def block_on(
    parent: bytes,
    height: int,
    time: int,
    txs: Sequence[Tx] = (),
    fees: int = 0,
    extra: bytes = b"",
) -> Block:
    """A solved regtest block on ``parent`` holding ``txs``."""
    coinbase = create_coinbase(
        height, block_subsidy(height, REGTEST) + fees, MINER_SCRIPT, extra=extra, txs=list(txs)
    )
    block = assemble_block(parent, time, REGTEST_BITS, [coinbase, *txs])
    assert solve(block.header)
    return block


def mine(chain: Chainstate, txs: Sequence[Tx] = (), fees: int = 0, extra: bytes = b"") -> Block:
    """Mine ``txs`` on the tip; asserts the chainstate accepts the block as its new tip."""
    tip = chain.tip
    block = block_on(tip.hash, tip.height + 1, tip.time + 1, txs, fees, extra)
    result = chain.process_block(block)
    assert result.status is BlockStatus.ACCEPTED and result.tip_changed, result
    return block


@dataclass(slots=True)
class Env:
    chain: Chainstate
    pool: Mempool
    clock: FakeClock
    coins: list[Coin]  # coinbase coins, oldest first (the first ones are mature)
    used: int = 0
    extra: list = field(default_factory=list)

    def mature(self, n: int = 1) -> list[Coin]:
        """``n`` unused mature coinbase coins."""
        tip = self.chain.tip.height
        out = []
        while len(out) < n:
            coin = self.coins[self.used]
            self.used += 1
            assert coin.height + 100 <= tip + 1, "ran out of mature coins"
            out.append(coin)
        return out

    def fan_out(self, n: int, fee: int = 20_000) -> list[Coin]:
        """Confirm one transaction splitting a mature coinbase into ``n`` outputs; return them."""
        tx, created = spend(self.mature(1), n, fee)
        mine(self.chain, [tx], fee, extra=n.to_bytes(4, "little") + bytes([self.used]))
        return created

"""Regtest chains with real signed spends.

The demo, the validation benchmark and the differential tests all need chains
whose blocks carry genuine P2WPKH and P2TR spends (so script checks do real
ECDSA and Schnorr work). ``RegtestWorkload`` keeps its own coins, pays every
coinbase to one of its keys, and once coinbases mature fills blocks with
transactions spending them, signed by ``node.wallet.keys``.

A block can be built as a draft (``adopt=False``) and adopted later, so tests
can mutate it and offer it to validators before deciding whether it extends
the chain.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from node.mining.assembler import assemble_block, create_coinbase, solve
from node.wallet.keys import WalletKey
from protocols.bitcoin.block import Block
from protocols.bitcoin.sighash import PrecomputedTxData
from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint

COINBASE_MATURITY = 100
REGTEST_BITS = 0x207FFFFF
REGTEST_HALVING = 150
REGTEST_GENESIS_HASH = bytes.fromhex(
    "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
)[::-1]
REGTEST_GENESIS_TIME = 1296688602
FEE_PER_INPUT = 200
DUST = 1000


@dataclass(slots=True)
class Coin:
    prevout: bytes
    output: TxOut
    key: WalletKey
    height: int
    coinbase: bool


@dataclass(slots=True)
class _Draft:
    """Coin-pool changes of a built block, applied when it is adopted."""

    block: Block
    matured: int
    spent: list[Coin]
    created: list[Coin]
    coinbase: Coin
    spent_by_prevout: dict[bytes, Coin] = field(default_factory=dict)


def regtest_subsidy(height: int) -> int:
    halvings = height // REGTEST_HALVING
    return 0 if halvings >= 64 else (50 * 100_000_000) >> halvings


class RegtestWorkload:
    """Builds consecutive regtest blocks on top of ``tip`` with signed spends."""

    def __init__(
        self,
        seed: bytes = b"blvm-regtest",
        *,
        tip: bytes = REGTEST_GENESIS_HASH,
        height: int = 0,
        start_time: int = REGTEST_GENESIS_TIME + 1,
        keys: int = 16,
    ) -> None:
        self.tip = tip
        self.height = height
        self.time = start_time
        self._keys = [WalletKey.from_seed(seed, i) for i in range(keys)]
        self._next_key = 0
        self.immature: deque[Coin] = deque()
        self.spendable: deque[Coin] = deque()
        self.draft: _Draft | None = None
        self._drafts = 0  # extranonce: no two drafts share a coinbase, hence a header

    def _payee(self) -> tuple[WalletKey, bytes]:
        """Next key and its output script, alternating P2WPKH and P2TR so every
        block exercises both ECDSA and Schnorr checks."""
        index = self._next_key
        self._next_key += 1
        key = self._keys[index % len(self._keys)]
        return key, key.p2tr if index & 1 else key.p2wpkh

    @staticmethod
    def sign(tx: Tx, coins: Sequence[Coin]) -> None:
        """Sign every input of ``tx``; ``coins[i]`` is what input ``i`` spends."""
        spent = [c.output for c in coins]
        pre = PrecomputedTxData(tx, spent)
        for i, coin in enumerate(coins):
            if coin.output.script_pubkey == coin.key.p2tr:
                coin.key.sign_p2tr(tx, i, spent, pre)
            else:
                coin.key.sign_p2wpkh(tx, i, coin.output.value, pre)
        tx.invalidate()

    def _spend(
        self, coins: list[Coin], n_outputs: int, height: int, created: list[Coin]
    ) -> tuple[Tx, int]:
        total = sum(c.output.value for c in coins)
        fee = FEE_PER_INPUT * (len(coins) + n_outputs)
        n_outputs = max(1, min(n_outputs, (total - fee) // DUST))
        share = (total - fee) // n_outputs
        payees = [self._payee() for _ in range(n_outputs)]
        outputs = [TxOut(share, script) for _, script in payees]
        tx = Tx(2, [TxIn(c.prevout, b"", 0xFFFFFFFE) for c in coins], outputs, 0)
        self.sign(tx, coins)
        created.extend(
            Coin(outpoint(tx.txid, n), out, key, height, False)
            for n, (out, (key, _)) in enumerate(zip(outputs, payees, strict=True))
        )
        return tx, total - share * n_outputs

    def next_block(
        self,
        target_inputs: int = 0,
        inputs_per_tx: int = 2,
        outputs_per_tx: int = 2,
        *,
        adopt: bool = True,
    ) -> Block:
        """Build and solve the next block, spending about ``target_inputs`` mature coins.

        With ``adopt=False`` the block is only a draft: call :meth:`adopt` if it
        joins the chain, or build another draft instead.
        """
        height = self.height + 1
        matured = 0
        while (
            matured < len(self.immature)
            and self.immature[matured].height + COINBASE_MATURITY <= height
        ):
            matured += 1
        pool = list(self.spendable) + [self.immature[i] for i in range(matured)]
        budget = min(target_inputs, len(pool))
        spent = pool[:budget]
        created: list[Coin] = []
        txs: list[Tx] = []
        fees = 0
        for start in range(0, budget, inputs_per_tx):
            tx, fee = self._spend(
                spent[start : start + inputs_per_tx], outputs_per_tx, height, created
            )
            txs.append(tx)
            fees += fee
        key, script = self._payee()
        self._drafts += 1
        coinbase = create_coinbase(
            height,
            regtest_subsidy(height) + fees,
            script,
            extra=self._drafts.to_bytes(4, "little"),
            txs=txs,
        )
        block = assemble_block(self.tip, self.time + 1, REGTEST_BITS, [coinbase, *txs])
        solve(block.header)
        cb_coin = Coin(outpoint(coinbase.txid, 0), coinbase.outputs[0], key, height, True)
        self.draft = _Draft(block, matured, spent, created, cb_coin)
        self.draft.spent_by_prevout = {c.prevout: c for c in spent}
        if adopt:
            self.adopt(block)
        return block

    def adopt(self, block: Block) -> None:
        """Make ``block`` (the last draft, possibly with a changed header) the new tip."""
        draft = self.draft
        if draft is None or block.txs != draft.block.txs:
            raise ValueError("only the last draft's transactions can be adopted")
        for _ in range(draft.matured):
            self.spendable.append(self.immature.popleft())
        for _ in range(len(draft.spent)):
            self.spendable.popleft()
        self.spendable.extend(draft.created)
        self.immature.append(draft.coinbase)
        self.tip = block.hash
        self.height += 1
        self.time = block.header.time
        self.draft = None

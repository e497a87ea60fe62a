"""Block script verification: Core's regtest chain passes, any damaged input is found."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from node.chain import params as P
from node.chain.params import ScriptFlag
from node.chain.scriptcheck import (
    BlockScriptVerifier,
    KernelTx,
    ScriptCheckError,
    ScriptFailure,
    ScriptJob,
    script_flags,
    verify_input,
)
from protocols.bitcoin.tx import Tx
from tests.helpers.regtest_fixture import load_blocks, script_jobs
from tests.helpers.signed_txs import signed_jobs


@pytest.fixture(scope="module")
def jobs(core_vectors: Path) -> list[list[ScriptJob]]:
    return script_jobs(load_blocks(core_vectors))


def _damage_signature(job: ScriptJob) -> ScriptJob:
    """Flip one byte inside the first witness signature (or scriptSig) of the tx."""
    tx = Tx.from_bytes(job.tx_bytes)
    txin = tx.inputs[0]
    if txin.witness:
        sig = bytearray(txin.witness[0])
        sig[10] ^= 1
        txin.witness = [bytes(sig), *txin.witness[1:]]
    else:
        script = bytearray(txin.script_sig)
        script[10] ^= 1
        txin.script_sig = bytes(script)
    tx.invalidate()
    return ScriptJob(job.tx_index, tx.serialize(), job.spent_outputs)


def test_scriptcheck_flags_per_height() -> None:
    m = P.MAINNET
    base = ScriptFlag.P2SH | ScriptFlag.WITNESS | ScriptFlag.TAPROOT
    assert script_flags(1, m) == base
    assert script_flags(363725, m) == base | ScriptFlag.DERSIG
    assert script_flags(388381, m) == base | ScriptFlag.DERSIG | ScriptFlag.CHECKLOCKTIMEVERIFY
    assert script_flags(481824, m) == ScriptFlag.ALL
    bip16 = bytes.fromhex("00000000000002dc756eebf4f49723ed8d30cc28a5f108eb94b1ba88ac4f9c22")[::-1]
    assert script_flags(170060, m, bip16) == 0
    taproot_exc = bytes.fromhex("0000000000000000000f14c35b2d841e986ab5441de8c585d5ffe55ea1e395ad")[
        ::-1
    ]
    assert script_flags(692261, m, taproot_exc) == ScriptFlag.ALL & ~ScriptFlag.TAPROOT
    assert script_flags(1, P.REGTEST) == ScriptFlag.ALL
    assert script_flags(0, P.REGTEST) == base | ScriptFlag.NULLDUMMY
    assert script_flags(1, P.TESTNET4) == ScriptFlag.ALL == script_flags(1, P.SIGNET)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_scriptcheck_regtest_chain_all_valid(jobs: list[list[ScriptJob]], workers: int) -> None:
    with BlockScriptVerifier(workers) as verifier:
        for height, block_jobs in enumerate(jobs, 1):
            assert verifier.verify(block_jobs, script_flags(height, P.REGTEST)) is None
    assert sum(len(j.spent_outputs) for b in jobs for j in b) == 26


def test_scriptcheck_damaged_inputs_found_first(jobs: list[list[ScriptJob]]) -> None:
    flat = [j for b in jobs for j in b]
    # a synthetic "block" of every fixture transaction; damage two of them
    pool = [ScriptJob(i + 1, j.tx_bytes, j.spent_outputs) for i, j in enumerate(flat)]
    late, early = len(pool) - 2, len(pool) // 2
    pool[late] = _damage_signature(pool[late])
    with BlockScriptVerifier(2) as verifier:
        assert verifier.verify(pool, int(ScriptFlag.ALL)) == ScriptFailure(late + 1, 0)
        pool[early] = _damage_signature(pool[early])
        for _ in range(5):  # deterministic whatever the thread timing
            assert verifier.verify(pool, int(ScriptFlag.ALL)) == ScriptFailure(early + 1, 0)
    assert ScriptFailure(3, 1).detail() == "tx 3 input 1"


def test_scriptcheck_wrong_amount_fails_segwit_and_taproot(jobs: list[list[ScriptJob]]) -> None:
    checked = 0
    for block_jobs in jobs:
        for job in block_jobs:
            spent = list(job.spent_outputs)
            first = spent[0]
            if first.script_pubkey[:1] not in (b"\x00", b"\x51"):
                continue
            assert verify_input(job.tx_bytes, 0, spent, int(ScriptFlag.ALL))
            spent[0] = (first.value - 1, first.script_pubkey)
            assert not verify_input(job.tx_bytes, 0, spent, int(ScriptFlag.ALL))
            checked += 1
    assert checked >= 3


def test_scriptcheck_misuse_raises(jobs: list[list[ScriptJob]]) -> None:
    job = next(j for b in jobs for j in b)
    with pytest.raises(ScriptCheckError, match="spent outputs"):
        KernelTx(job.tx_bytes, [])
    with pytest.raises(ScriptCheckError, match="P2SH"):
        verify_input(job.tx_bytes, 0, job.spent_outputs, int(ScriptFlag.WITNESS))
    with pytest.raises(ScriptCheckError, match="non-consensus"):
        verify_input(job.tx_bytes, 0, job.spent_outputs, 1 << 1)
    with pytest.raises(ScriptCheckError, match="out of range"):
        verify_input(job.tx_bytes, 99, job.spent_outputs, int(ScriptFlag.ALL))
    with pytest.raises(ScriptCheckError, match="deserialize"):
        verify_input(b"\x01\x02", 0, [], 0)
    with BlockScriptVerifier(2) as verifier:
        assert verifier.verify([], int(ScriptFlag.ALL)) is None


def _damage_input(job: ScriptJob, index: int) -> ScriptJob:
    tx = Tx.from_bytes(job.tx_bytes)
    txin = tx.inputs[index]
    if txin.witness:
        sig = bytearray(txin.witness[0])
        sig[12] ^= 1
        txin.witness = [bytes(sig), *txin.witness[1:]]
    else:
        script = bytearray(txin.script_sig)
        script[12] ^= 1
        txin.script_sig = bytes(script)
    tx.invalidate()
    return ScriptJob(job.tx_index, tx.serialize(), job.spent_outputs)


def test_scriptcheck_large_tx_split_across_workers() -> None:
    # one 60-input transaction (P2PKH, P2WPKH, P2TR rotating) between two small ones
    big = signed_jobs(1, 60, seed=3)[0]
    small = signed_jobs(2, 2, seed=4)
    jobs = [
        ScriptJob(1, small[0].tx_bytes, small[0].spent_outputs),
        ScriptJob(2, big.tx_bytes, big.spent_outputs),
        ScriptJob(3, small[1].tx_bytes, small[1].spent_outputs),
    ]
    flags = int(ScriptFlag.ALL)
    with BlockScriptVerifier(2) as verifier:
        assert verifier.verify(jobs, flags) is None
        jobs[1] = _damage_input(jobs[1], 50)
        assert verifier.verify(jobs, flags) == ScriptFailure(2, 50)
        jobs[1] = _damage_input(jobs[1], 37)
        jobs[2] = _damage_input(jobs[2], 0)
        for _ in range(5):
            assert verifier.verify(jobs, flags) == ScriptFailure(2, 37)
    with BlockScriptVerifier(1) as single:
        assert single.verify(jobs, flags) == ScriptFailure(2, 37)


def test_scriptcheck_kernel_calls_release_the_gil() -> None:
    # ctypes drops the GIL around every foreign call not flagged PYTHONAPI (PyDLL/PYFUNCTYPE);
    # that is what lets the verifier's threads run the interpreter in parallel.
    from node.chain import scriptcheck

    for fn in (scriptcheck._verify, scriptcheck._tx_create, scriptcheck._ptd_create):
        assert not fn._flags_ & ctypes._FUNCFLAG_PYTHONAPI

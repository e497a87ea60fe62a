"""Script verification throughput: our C-API path on 1 and 2 threads vs pbk's object API.

Prints one JSON object. ``--quick`` uses a small signed set (CI); the full run a larger one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pbk
from pbk.script import PrecomputedTransactionData

from node.chain.params import ScriptFlag
from node.chain.scriptcheck import BlockScriptVerifier, KernelTx, ScriptJob
from tests.helpers.signed_txs import signed_jobs

FLAGS = int(ScriptFlag.ALL)


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _pbk_objects(job: ScriptJob):
    tx = pbk.Transaction(job.tx_bytes)
    scripts = [pbk.ScriptPubkey(o.script_pubkey) for o in job.spent_outputs]
    outs = [
        pbk.TransactionOutput(s, o.value) for s, o in zip(scripts, job.spent_outputs, strict=True)
    ]
    pre = PrecomputedTransactionData(tx, outs)
    return tx, scripts, pre


def _pbk_verify_all(jobs: list[ScriptJob]) -> None:
    flags = pbk.ScriptVerificationFlags(FLAGS)
    for job in jobs:
        tx, scripts, pre = _pbk_objects(job)
        for i, (script, out) in enumerate(zip(scripts, job.spent_outputs, strict=True)):
            if not script.verify(out.value, tx, pre, i, flags):
                raise AssertionError("pbk rejected a valid input")


def run(quick: bool) -> dict[str, object]:
    n_txs, per_tx, repeats = (60, 4, 2) if quick else (800, 4, 3)
    jobs = signed_jobs(n_txs, per_tx, seed=7)
    n_inputs = n_txs * per_tx
    tx_bytes = sum(len(j.tx_bytes) for j in jobs)
    times = {}
    for workers in (1, 2):
        with BlockScriptVerifier(workers) as verifier:
            assert verifier.verify(jobs, FLAGS) is None
            times[workers] = _best(lambda v=verifier: v.verify(jobs, FLAGS), repeats)
    t_pbk = _best(lambda: _pbk_verify_all(jobs), repeats)

    def build_ours() -> None:
        for job in jobs:
            KernelTx(job.tx_bytes, job.spent_outputs).close()

    def build_pbk() -> None:
        for job in jobs:
            _pbk_objects(job)

    mb = tx_bytes / 1e6
    return {
        "quick": quick,
        "txs": n_txs,
        "inputs": n_inputs,
        "tx_bytes": tx_bytes,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "ours_1thread_inputs_per_s": round(n_inputs / times[1]),
        "ours_2threads_inputs_per_s": round(n_inputs / times[2]),
        "speedup_2_vs_1_threads": round(times[1] / times[2], 2),
        "pbk_objects_1thread_inputs_per_s": round(n_inputs / t_pbk),
        "speedup_ours_1thread_vs_pbk_objects": round(t_pbk / times[1], 2),
        "build_ms_per_mb_ours": round(_best(build_ours, repeats) * 1e3 / mb, 2),
        "build_ms_per_mb_pbk_objects": round(_best(build_pbk, repeats) * 1e3 / mb, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small input set (CI)")
    args = parser.parse_args(argv)
    result = run(args.quick)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()

"""Block connection throughput: our node next to Bitcoin Core's engine on the same blocks.

Generates a regtest chain whose blocks carry real signed P2WPKH and P2TR spends
(at least 100,000 inputs by default), then connects it from raw bytes twice, in
separate processes so each peak RSS is its own: once with our chainstate
(parse, checks, UTXO set in LMDB, undo, block files, scripts through the
kernel's verifier on worker threads) and once with py-bitcoinkernel's
ChainstateManager. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MATURITY_BLOCKS = 110
FANOUT_TXS = 8
FANOUT_OUTPUTS = 1000


def generate(path: Path, spend_inputs: int, inputs_per_block: int) -> dict:
    from node.mining.workload import RegtestWorkload

    w = RegtestWorkload(b"bench-connect")
    started = time.perf_counter()
    blocks = [w.next_block() for _ in range(MATURITY_BLOCKS)]
    blocks.append(w.next_block(FANOUT_TXS, inputs_per_tx=1, outputs_per_tx=FANOUT_OUTPUTS))
    spend_from = len(blocks)
    remaining = spend_inputs
    while remaining > 0:
        n = min(inputs_per_block, remaining)
        blocks.append(w.next_block(n, inputs_per_tx=2, outputs_per_tx=2))
        remaining -= n
    with path.open("wb") as f:
        for block in blocks:
            raw = block.serialize()
            f.write(len(raw).to_bytes(4, "little") + raw)
    inputs = sum(len(tx.inputs) for b in blocks[spend_from:] for tx in b.txs[1:])
    return {
        "blocks": len(blocks),
        "spend_blocks": len(blocks) - spend_from,
        "spend_from_height": spend_from + 1,
        "signed_inputs": inputs,
        "bytes": path.stat().st_size,
        "generate_s": round(time.perf_counter() - started, 2),
    }


def read_blocks(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "little")
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(path: Path, spend_from: int, threads: int, queue: mp.Queue) -> None:
    from node.chain.chainstate import BlockStatus, Chainstate
    from node.chain.params import REGTEST

    blocks = read_blocks(path)
    with tempfile.TemporaryDirectory(prefix="blvm-bench-") as d:
        cs = Chainstate.open(d, REGTEST, script_threads=threads)
        t0 = time.perf_counter()
        t_spend = t0
        for height, raw in enumerate(blocks, start=1):
            if height == spend_from:
                t_spend = time.perf_counter()
            result = cs.process_block(raw)
            if result.status != BlockStatus.ACCEPTED:
                raise SystemExit(f"our node rejected block {height}: {result.reason}")
        cs.flush()
        t1 = time.perf_counter()
        tip = cs.tip.hash
        cs.close()
    queue.put(
        {
            "total_s": t1 - t0,
            "spend_s": t1 - t_spend,
            "peak_rss_mib": _peak_rss_mib(),
            "tip": tip.hex(),
        }
    )


def run_kernel(path: Path, spend_from: int, threads: int, queue: mp.Queue) -> None:
    import pbk

    blocks = read_blocks(path)
    with tempfile.TemporaryDirectory(prefix="blvm-bench-kernel-") as d:
        ctx = pbk.make_context(pbk.ChainType.REGTEST)
        opts = pbk.ChainstateManagerOptions(ctx, d, str(Path(d) / "blocks"))
        opts.set_worker_threads_num(threads)
        chainman = pbk.ChainstateManager(opts)
        t0 = time.perf_counter()
        t_spend = t0
        build_s = 0.0
        for height, raw in enumerate(blocks, start=1):
            if height == spend_from:
                t_spend = time.perf_counter()
                build_s = 0.0
            b0 = time.perf_counter()
            block = pbk.Block(raw)
            build_s += time.perf_counter() - b0
            chainman.process_block(block)
        t1 = time.perf_counter()
        chain = chainman.get_active_chain()
        if chain.height != len(blocks):
            raise SystemExit(f"kernel stopped at height {chain.height}")
        tip = bytes(chain.block_tree_entries[chain.height].block_hash)
        del chainman
    queue.put(
        {
            "total_s": t1 - t0,
            "spend_s": t1 - t_spend,
            "spend_block_object_s": build_s,
            "peak_rss_mib": _peak_rss_mib(),
            "tip": tip.hex(),
        }
    )


def measure(target, path: Path, spend_from: int, threads: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(path, spend_from, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"{target.__name__} failed with exit code {proc.exitcode}")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=100_000, help="signed inputs to connect")
    parser.add_argument("--inputs-per-block", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2, help="script-check threads, both sides")
    parser.add_argument(
        "--quick", action="store_true", help="CI mode (same sizes; the default is already CI-sized)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="blvm-bench-chain-") as d:
        path = Path(d) / "chain.bin"
        chain = generate(path, args.inputs, args.inputs_per_block)
        ours = measure(run_ours, path, chain["spend_from_height"], args.threads)
        kernel = measure(run_kernel, path, chain["spend_from_height"], args.threads)
    if ours["tip"] != kernel["tip"]:
        raise SystemExit("our tip and the kernel's tip differ")
    n, blocks = chain["signed_inputs"], chain["spend_blocks"]
    kernel_process_s = kernel["spend_s"] - kernel["spend_block_object_s"]
    result = {
        "benchmark": "connect_signed_chain",
        "threads": args.threads,
        "chain": chain,
        "ours": {
            "inputs_per_s": round(n / ours["spend_s"]),
            "blocks_per_s": round(blocks / ours["spend_s"], 2),
            "whole_chain_s": round(ours["total_s"], 2),
            "peak_rss_mib": round(ours["peak_rss_mib"], 1),
        },
        "kernel": {
            "inputs_per_s": round(n / kernel["spend_s"]),
            "blocks_per_s": round(blocks / kernel["spend_s"], 2),
            "inputs_per_s_excluding_pbk_block_construction": round(n / kernel_process_s),
            "whole_chain_s": round(kernel["total_s"], 2),
            "peak_rss_mib": round(kernel["peak_rss_mib"], 1),
        },
    }
    result["ratio_ours_to_kernel"] = round(
        ours_ratio := n / ours["spend_s"] / (n / kernel["spend_s"]), 3
    )
    result["ratio_ours_to_kernel_process_only"] = round(
        (n / ours["spend_s"]) / (n / kernel_process_s), 3
    )
    result["goal_ratio"] = 0.5
    result["goal_met"] = ours_ratio >= 0.5
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""Sync from btcd on loopback: header rate, block rate, resident memory. Prints one JSON object.

btcd (a real, independent node) mines a regtest chain; our node then syncs it over P2P
from scratch. Headers arrive first (2,000 per message), then blocks within the download
window; the two phases are timed separately.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _sync(btcd_port: int, datadir: Path, target_hash: str, target_height: int) -> dict:
    from node.chain.chainstate import Chainstate
    from node.chain.params import REGTEST
    from node.net.p2p_node import P2PNode

    chain = Chainstate.open(datadir, REGTEST)
    node = P2PNode(chain, connect=[("127.0.0.1", btcd_port)])
    rss_peak = _rss_mib()
    t0 = time.perf_counter()
    await node.start()
    t_headers = None
    try:
        while chain.tip.hash_hex != target_hash:
            await asyncio.sleep(0.05)
            rss_peak = max(rss_peak, _rss_mib())
            if t_headers is None and chain.tree.best.height >= target_height:
                t_headers = time.perf_counter()
            if time.perf_counter() - t0 > 1800:
                raise SystemExit("sync did not finish within 30 minutes")
        t1 = time.perf_counter()
    finally:
        await node.stop()
        chain.close()
    t_headers = t_headers or t1
    return {
        "headers_s": t_headers - t0,
        "total_s": t1 - t0,
        "blocks_phase_s": t1 - t_headers,
        "rss_peak_mib": rss_peak,
    }


def main(argv: list[str] | None = None) -> dict:
    from tests.helpers.btcd import Btcd

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=5000, help="chain length btcd mines")
    parser.add_argument("--quick", action="store_true", help="CI size (2,000 blocks)")
    args = parser.parse_args(argv)
    blocks = 2000 if args.quick else args.blocks
    with tempfile.TemporaryDirectory(prefix="blvm-bench-sync-") as d:
        btcd = Btcd(Path(d) / "btcd")
        try:
            t = time.perf_counter()
            for _ in range(blocks // 500):
                btcd.rpc("generate", 500)
            if blocks % 500:
                btcd.rpc("generate", blocks % 500)
            mine_s = time.perf_counter() - t
            best = btcd.rpc("getbestblockhash")
            sync = asyncio.run(_sync(btcd.p2p_port, Path(d) / "ours", best, blocks))
        finally:
            btcd.stop()
    result = {
        "benchmark": "p2p_sync_from_btcd",
        "blocks": blocks,
        "btcd_mining_s": round(mine_s, 2),
        "headers_per_s": round(blocks / sync["headers_s"]),
        "blocks_per_s": round(blocks / sync["total_s"], 1),
        "block_phase_blocks_per_s": round(blocks / max(sync["blocks_phase_s"], 1e-9), 1),
        "sync_s": round(sync["total_s"], 2),
        "rss_peak_mib": round(sync["rss_peak_mib"], 1),
        "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

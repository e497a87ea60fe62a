"""JSON-RPC latency and throughput: getblocktemplate over HTTP with a full mempool, and calls/s.

Template *build* time on a 5,000-transaction mempool is measured by ``bench_mempool.py``
(``template_build_ms``, ``template_cached_ms``); this bench adds what a pool or miner sees on
top of it:

- ``to_gbt_ms``: turning a built template into the getblocktemplate JSON object,
- ``gbt_rpc_cached_ms_*``: the full round trip through our HTTP server (auth, dispatch,
  JSON encoding, transfer, client decoding) while the template is cached (Core also caches),
- ``gbt_rpc_fresh_ms_*``: the same with a template built from scratch on every call,
- ``gbt_longpoll_wake_ms_*``: a new block connected → a waiting longpoll client holds the
  next template (tip change, rebuild on the still-full mempool, encoding, transfer),
- ``getblockcount_calls_per_s_1_client`` / ``_4_clients``: plain RPC throughput.

The server runs in this process; the load comes from a child process (this script with
``--client``) so client and server do not share one interpreter lock.
Prints one JSON object. ``--quick``: 500 transactions, fewer rounds.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FANOUT = 2_000


# -- client side (run as a child process) ---------------------------------------------------
class _Client:
    """A keep-alive JSON-RPC client on http.client (what python-bitcoinrpc does underneath)."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": "Basic " + token, "Content-Type": "application/json"}
        self.next_id = 0

    def call(self, method: str, *params: Any) -> Any:
        self.next_id += 1
        body = json.dumps({"method": method, "params": list(params), "id": self.next_id})
        self.conn.request("POST", "/", body, self.headers)
        reply = json.loads(self.conn.getresponse().read())
        if reply.get("error"):
            raise RuntimeError(reply["error"])
        return reply["result"]


def client_main(port: int, user: str, password: str, mode: str, amount: float, threads: int):
    if mode == "gbt":
        c = _Client(port, user, password)
        times = []
        for _ in range(int(amount)):
            started = time.perf_counter()
            gbt = c.call("getblocktemplate", {"rules": ["segwit"]})
            times.append(time.perf_counter() - started)
        return {"ms": [t * 1000 for t in times], "txs": len(gbt["transactions"])}
    counts = [0] * threads
    stop = time.perf_counter() + amount

    def hammer(i: int) -> None:
        c = _Client(port, user, password)
        while time.perf_counter() < stop:
            c.call("getblockcount")
            counts[i] += 1

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"calls": sum(counts), "seconds": time.perf_counter() - started}


def _run_client(port: int, user: str, password: str, mode: str, amount: float, threads: int = 1):
    cmd = [sys.executable, __file__, "--client", str(port), user, password, mode, str(amount)]
    done = subprocess.run(
        [*cmd, str(threads)], capture_output=True, text=True, timeout=600, check=True
    )
    return json.loads(done.stdout)


# -- server side --------------------------------------------------------------------------------
def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _fill_mempool(n_txs: int, tmp: Path):
    """A regtest chain plus a mempool of ``n_txs`` signed one-in one-out spends."""
    from node.chain.chainstate import BlockStatus, Chainstate
    from node.chain.params import REGTEST
    from node.mempool import Mempool
    from tests.unit.mempool.mempool_tools import Env, FakeClock, regtest_chain, spend

    fanouts = -(-n_txs // FANOUT)
    blocks, coins = regtest_chain(101 + fanouts + 1, seed=b"bench-rpc")
    chain = Chainstate.open(tmp / "node", REGTEST, script_threads=1)
    for raw in blocks:
        assert chain.process_block(raw).status is BlockStatus.ACCEPTED
    clock = FakeClock()
    pool = Mempool(chain, clock=clock)
    env = Env(chain, pool, clock, coins)
    outputs = []
    left = n_txs
    while left > 0:
        outputs += env.fan_out(min(FANOUT, left), fee=200_000)
        left -= FANOUT
    for i, out in enumerate(outputs[:n_txs]):
        tx, _ = spend([out], 1, fee=500 + 7 * (i % 97))
        result = pool.accept(tx)
        assert result.accepted, result.reason
    return chain, pool, clock


class _FreshTemplates:
    """The node's TemplateBuilder without its cache: every call builds from scratch."""

    def __init__(self, chain: Any, pool: Any, clock: Any) -> None:
        self.args = (chain, pool)
        self.clock = clock

    def build(self) -> Any:
        from node.mining.template import TemplateBuilder

        return TemplateBuilder(*self.args, clock=self.clock).build()


def _longpoll_wake(port: int, user: str, password: str, chain: Any, rounds: int) -> list[float]:
    """ms from handing a new block to the chainstate until a waiting longpoll got its answer."""
    from tests.unit.mempool.mempool_tools import block_on

    out = []
    for _ in range(rounds):
        c = _Client(port, user, password)
        longpollid = c.call("getblocktemplate", {"rules": ["segwit"]})["longpollid"]
        answered: list[float] = []

        def wait(c: _Client = c, longpollid: str = longpollid, answered=answered) -> None:
            c.call("getblocktemplate", {"rules": ["segwit"], "longpollid": longpollid})
            answered.append(time.perf_counter())

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.3)  # the request is parked on the tip-change condition by now
        tip = chain.tip
        block = block_on(tip.hash, tip.height + 1, tip.time + 1)  # empty: the mempool stays full
        started = time.perf_counter()
        assert chain.process_block(block).tip_changed
        waiter.join(60)
        out.append((answered[0] - started) * 1000)
    return out


def run(n_txs: int, rounds: int, seconds: float) -> dict:
    from node.mining.template import TemplateBuilder
    from node.rpc.auth import Authenticator
    from node.rpc.context import NodeContext
    from node.rpc.dispatch import Dispatcher
    from node.rpc.server import RpcServer
    from node.rpc.template_rpc import TipWaiter
    from node.service import RPC_MODULES

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        chain, pool, clock = _fill_mempool(n_txs, Path(tmp))
        setup_s = time.perf_counter() - started
        try:
            builder = TemplateBuilder(chain, pool, clock=clock)
            ctx = NodeContext(chain, mempool=pool, templates=builder)
            ctx.longpoll = TipWaiter(ctx)
            dispatcher = Dispatcher(ctx)
            for module in RPC_MODULES:
                dispatcher.register_module(module)
            ctx.dispatcher = dispatcher
            password = secrets.token_hex(32)
            server = RpcServer(dispatcher, Authenticator(cookie_password=password))
            server.start()
            user = "__cookie__"
            try:
                template = builder.build()
                to_gbt = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    gbt = template.to_gbt()
                    to_gbt.append((time.perf_counter() - t0) * 1000)
                gbt_bytes = len(json.dumps(gbt))
                cached = _run_client(server.port, user, password, "gbt", rounds)
                ctx.templates = _FreshTemplates(chain, pool, clock)
                fresh = _run_client(server.port, user, password, "gbt", rounds)
                ctx.templates = builder
                one = _run_client(server.port, user, password, "count", seconds, 1)
                four = _run_client(server.port, user, password, "count", seconds, 4)
                wake = _longpoll_wake(server.port, user, password, chain, max(2, rounds // 4))
            finally:
                server.stop()
                ctx.longpoll.unsubscribe()
            assert cached["txs"] == fresh["txs"] == len(template.transactions)
            return {
                "mempool_txs": len(pool),
                "template_txs": len(template.transactions),
                "gbt_json_bytes": gbt_bytes,
                "setup_s": round(setup_s, 1),
                "to_gbt_ms_median": round(statistics.median(to_gbt), 2),
                "to_gbt_ms_p95": round(_p95(to_gbt), 2),
                "gbt_rpc_cached_ms_median": round(statistics.median(cached["ms"]), 2),
                "gbt_rpc_cached_ms_p95": round(_p95(cached["ms"]), 2),
                "gbt_rpc_fresh_ms_median": round(statistics.median(fresh["ms"]), 2),
                "gbt_rpc_fresh_ms_p95": round(_p95(fresh["ms"]), 2),
                "gbt_longpoll_wake_ms_median": round(statistics.median(wake), 2),
                "gbt_longpoll_wake_ms_max": round(max(wake), 2),
                "getblockcount_calls_per_s_1_client": round(one["calls"] / one["seconds"], 1),
                "getblockcount_calls_per_s_4_clients": round(four["calls"] / four["seconds"], 1),
                "gbt_build_ms_see": "bench_mempool.py template_build_ms / template_cached_ms",
            }
        finally:
            pool.close()
            chain.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 transactions, fewer rounds")
    parser.add_argument("--txs", type=int, default=None, help="mempool size (default 5000)")
    parser.add_argument("--rounds", type=int, default=None, help="timed GBT calls per kind")
    parser.add_argument("--seconds", type=float, default=None, help="throughput run length")
    parser.add_argument("--client", nargs=6, help=argparse.SUPPRESS)  # the load process
    args = parser.parse_args(argv)
    if args.client:
        port, user, password, mode, amount, threads = args.client
        print(json.dumps(client_main(int(port), user, password, mode, float(amount), int(threads))))
        return {}
    n = args.txs or (500 if args.quick else 5_000)
    rounds = args.rounds or (8 if args.quick else 40)
    seconds = args.seconds or (1.0 if args.quick else 4.0)
    result = run(n, rounds, seconds)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

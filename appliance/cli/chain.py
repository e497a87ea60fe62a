"""`blvm chain`: offline tools over chain data (header files, raw blocks).

Each subcommand is one ``_add_<name>(sub)`` function listed in ``SUBCOMMANDS``; adding a
subcommand means writing its function and appending it there, nothing else.
"""

from __future__ import annotations

import argparse
import string
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from appliance.cli._output import emit
from node.chain import params as chain_params
from node.chain.blockinfo import summarize
from node.chain.errors import ChainError, ConsensusError
from node.chain.headers import HeaderTree
from protocols.bitcoin.block import HEADER_SIZE, Block
from protocols.bitcoin.errors import DecodeError
from protocols.bitcoin.hashes import hash_to_hex, sha256d

PROGRESS_EVERY = 100_000
_HEX_BYTES = frozenset((string.hexdigits + string.whitespace).encode())


class InputError(Exception):
    """The input file cannot be read as what the command expects."""


# -- input helpers -----------------------------------------------------------------------------


def _looks_hex(sample: bytes) -> bool:
    return bool(sample.strip()) and all(b in _HEX_BYTES for b in sample)


def iter_header_file(path: Path) -> Iterator[bytes]:
    """Yield 80-byte headers from a file of hex lines or of raw 80-byte records."""
    with open(path, "rb") as f:
        sample = f.read(4096)
        f.seek(0)
        if _looks_hex(sample):
            for lineno, line in enumerate(f, 1):
                text = line.strip()
                if not text:
                    continue
                try:
                    raw = bytes.fromhex(text.decode("ascii"))
                except (ValueError, UnicodeDecodeError):
                    raise InputError(f"{path}:{lineno}: not a hex header") from None
                if len(raw) != HEADER_SIZE:
                    raise InputError(
                        f"{path}:{lineno}: header is {len(raw)} bytes, expected {HEADER_SIZE}"
                    )
                yield raw
            return
        while True:
            chunk = f.read(HEADER_SIZE * 4096)
            if not chunk:
                return
            if len(chunk) % HEADER_SIZE:
                raise InputError(
                    f"{path}: raw header file size is not a multiple of {HEADER_SIZE} bytes"
                )
            for pos in range(0, len(chunk), HEADER_SIZE):
                yield chunk[pos : pos + HEADER_SIZE]


def read_block_file(path: Path) -> Block:
    data = path.read_bytes()
    if _looks_hex(data[:4096]):
        try:
            data = bytes.fromhex(data.decode("ascii").strip())
        except (ValueError, UnicodeDecodeError):
            raise InputError(f"{path}: not valid hex") from None
    try:
        return Block.from_bytes(data)
    except DecodeError as exc:
        raise InputError(f"{path}: block decode failed: {exc}") from None


def _fail_input(args: argparse.Namespace, message: str) -> int:
    if args.json:
        emit({"error": message}, True)
    else:
        print(f"error: {message}", file=sys.stderr)
    return 2


# -- check-headers -----------------------------------------------------------------------------


def check_headers(path: Path, chain: str, now: int | None = None, progress: bool = True) -> dict:
    """Validate a header file from genesis; returns the result dict (``ok`` tells which)."""
    params = chain_params.get(chain)
    tree = HeaderTree(params)
    now = int(time.time()) if now is None else now
    count = 0
    expected_height = 1
    started = time.monotonic()
    for raw in iter_header_file(path):
        if count == 0 and raw == params.genesis_bytes[:HEADER_SIZE]:
            count = 1
            continue
        try:
            entry = tree.accept(raw, now)
        except ConsensusError as exc:
            height = exc.height if exc.height is not None else expected_height
            return {
                "ok": False,
                "height": height,
                "reason": exc.reason,
                "hash": hash_to_hex(exc.block_hash or sha256d(raw)),
            }
        count += 1
        expected_height = entry.height + 1
        if progress and count % PROGRESS_EVERY == 0:
            rate = count / max(time.monotonic() - started, 1e-9)
            print(f"checked {count} headers ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    best = tree.best
    return {
        "ok": True,
        "count": count,
        "height": best.height,
        "tip": best.hash_hex,
        "chainwork": f"{best.chainwork:064x}",
    }


def _run_check_headers(args: argparse.Namespace) -> int:
    try:
        result = check_headers(Path(args.file), args.chain, progress=not args.quiet)
    except (OSError, InputError) as exc:
        return _fail_input(args, str(exc))
    ok = result.pop("ok")
    if ok:
        human = (
            f"valid: {result['count']} headers, tip {result['tip']} at height "
            f"{result['height']}, chainwork {result['chainwork']}"
        )
    else:
        human = (
            f"invalid header at height {result['height']}: {result['reason']} ({result['hash']})"
        )
    emit(result, args.json, human)
    return 0 if ok else 1


def _add_check_headers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-headers",
        help="validate a file of block headers from genesis (PoW, difficulty, time, version)",
        description=(
            "Validate block headers as Bitcoin Core's header checks do: proof of work, "
            "difficulty retargets (incl. testnet4 rules), median-time-past, future time and "
            "version. FILE holds one hex header per line or raw 80-byte records; the first "
            "header must be the genesis block or build on it. Exit 0 when valid, 1 when a "
            "header is invalid, 2 when the file cannot be read."
        ),
    )
    p.add_argument("file", metavar="FILE", help="header file (hex lines or raw 80-byte records)")
    p.add_argument(
        "--chain",
        default="mainnet",
        choices=chain_params.NAMES,
        help="network whose rules apply (default: mainnet)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_run_check_headers)


# -- decode-block ------------------------------------------------------------------------------


def _run_decode_block(args: argparse.Namespace) -> int:
    try:
        block = read_block_file(Path(args.file))
    except (OSError, InputError) as exc:
        return _fail_input(args, str(exc))
    result = summarize(block).to_dict()
    human = "\n".join(f"{key}: {value}" for key, value in result.items())
    emit(result, args.json, human)
    return 0


def _add_decode_block(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "decode-block",
        help="show a block's hash, size, weight and commitment status",
        description=(
            "Decode one serialized block (hex or raw bytes) and report its hash, size, weight, "
            "transaction count, merkle root status (ok / mismatch / mutated) and BIP141 "
            "witness commitment status (ok / mismatch / absent / not-required)."
        ),
    )
    p.add_argument("file", metavar="FILE", help="block file (hex text or raw bytes)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_decode_block)


# -- import ------------------------------------------------------------------------------------


def _run_import(args: argparse.Namespace) -> int:
    from node.chain.chainstate import Chainstate
    from node.chain.importer import ImportInputError, import_files
    from node.chain.prune import PruneConfigError

    params = chain_params.get(args.chain)
    if args.fast_prune and params.name != "regtest":
        return _fail_input(args, "--fast-prune is a regtest-only test mode")
    try:
        chainstate = Chainstate.open(
            args.datadir,
            params,
            prune_mib=args.prune,
            script_threads=args.script_threads,
            fast_prune=args.fast_prune,
            flush_interval=args.flush_interval,
        )
    except PruneConfigError as exc:
        return _fail_input(args, f"{exc} (--prune)")
    except (OSError, ChainError) as exc:
        return _fail_input(args, f"cannot open {args.datadir}: {exc}")

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        report = import_files(chainstate, [Path(f) for f in args.files], progress)
        stats = chainstate.utxo_stats()
        tip = chainstate.tip
        result: dict = {
            "height": tip.height,
            "tip": tip.hash_hex,
            "utxos": stats.count,
            "total_amount": stats.total_amount,
            "processed": report.processed,
            "duplicates": report.duplicates,
            "orphans": report.orphans,
        }
        if chainstate.policy.enabled:
            result["prune"] = chainstate.prune_info().to_dict()
    except ImportInputError as exc:
        return _fail_input(args, str(exc))
    finally:
        chainstate.close()  # flushes what was connected, also on Ctrl-C
    if report.invalid is not None:
        bad = report.invalid
        result["invalid"] = {
            "hash": bad.hash_hex,
            "height": bad.height,
            "reason": bad.reason,
            "message": bad.message,
            "file": report.file,
            "block_number": report.ordinal,
        }
        human = (
            f"invalid block {bad.hash_hex} at height {bad.height}: {bad.reason}"
            f" ({report.file}, block {report.ordinal}); stopped at tip {tip.hash_hex}"
            f" height {tip.height}"
        )
        emit(result, args.json, human)
        return 1
    human = (
        f"tip {tip.hash_hex} at height {tip.height}; {stats.count} UTXOs, "
        f"total {stats.total_amount} sat"
    )
    emit(result, args.json, human)
    return 0


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="validate and connect blocks from files into a datadir",
        description=(
            "Validate blocks with full consensus rules and connect them to the chainstate in "
            "DIR (created if missing). Each FILE holds hex blocks one per line, raw "
            "concatenated blocks, or Core blk*.dat records (detected). Blocks already known "
            "are skipped; a block that comes before its parent is held until the parent "
            "arrives (blocks whose parent never comes are reported as orphans); the first "
            "invalid block is reported with its hash, height and "
            "reason, nothing after it is connected, and the exit status is 1. Prints the "
            "resulting height, tip, UTXO count and total amount."
        ),
    )
    p.add_argument("files", metavar="FILE", nargs="+", help="block file(s), imported in order")
    p.add_argument(
        "--chain", default="mainnet", choices=chain_params.NAMES, help="network (default mainnet)"
    )
    p.add_argument("--datadir", required=True, metavar="DIR", help="chain data directory")
    p.add_argument(
        "--prune",
        type=float,
        default=0,
        metavar="MiB",
        help="keep block files under this size: 0 = off (default), else at least 550",
    )
    p.add_argument(
        "--fast-prune",
        action="store_true",
        help="regtest test mode: 64 KiB block files and any --prune target (like Core's -fastprune)",
    )
    p.add_argument(
        "--script-threads",
        type=int,
        default=None,
        metavar="N",
        help="script verification threads (default: number of CPUs)",
    )
    p.add_argument(
        "--flush-interval",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help=(
            "write the UTXO cache to disk at least this often (default 300); after a crash "
            "the import resumes from the last flush, so a lower value means less to redo"
        ),
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_run_import)


# -- registration ------------------------------------------------------------------------------

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_check_headers,
    _add_decode_block,
    _add_import,
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chain",
        help="offline chain tools: check header files, decode blocks",
        description="Offline tools over Bitcoin chain data.",
    )
    sub = parser.add_subparsers(dest="chain_command", metavar="SUBCOMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)

"""The appliance's TOML configuration: loaded into small dataclasses, validated at load.

Every error names the file, the dotted key and its line, because the person reading it is
editing that file by hand. tomllib reports no positions for valid documents, so lines are
found by scanning the text for the key inside its table.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.stratum_v2.upstream.errors import UpstreamConfigError
from appliance.stratum_v2.upstream.factory import UpstreamSpec, parse_upstream
from protocols.bitcoin.address import address_to_script
from protocols.sv2.errors import KeyFormatError
from protocols.sv2.keys import decode_authority_public_key

__all__ = ["ConfigError", "StratumConfig", "load_config", "load_stratum_config"]

CHAINS = ("mainnet", "testnet4", "signet", "regtest")
STRATUM_TABLE = "modules.stratum-v2"


class ConfigError(Exception):
    """One or more problems in a configuration file; `problems` holds each message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class StratumConfig:
    """`[modules.stratum-v2]`: what the Stratum V2 module needs to run."""

    chain: str
    payout_address: str
    payout_script: bytes
    pools: tuple[UpstreamSpec, ...]
    sv2_listen: HostPort
    sv1_listen: HostPort | None
    shares_per_minute: float
    node_tp: HostPort
    node_tp_key: str | None
    # Job Declaration Server for JD clients (off by default); it reads the node's mempool and
    # submits blocks over the node's RPC (None: the chain's default port / the node's datadir).
    jds_listen: HostPort | None = None
    node_rpc: HostPort | None = None
    node_rpc_cookie_dir: str | None = None
    # Share-server processes on the listening ports (a farm's pool on a multi-core board).
    workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "payout_address": self.payout_address,
            "pools": [p.name for p in self.pools],
            "sv2_listen": str(self.sv2_listen),
            "sv1_listen": str(self.sv1_listen) if self.sv1_listen else "off",
            "shares_per_minute": self.shares_per_minute,
            "node_tp": str(self.node_tp),
            "node_tp_key": self.node_tp_key,
            "jds_listen": str(self.jds_listen) if self.jds_listen else "off",
            "node_rpc": str(self.node_rpc) if self.node_rpc else "default",
            "node_rpc_cookie_dir": self.node_rpc_cookie_dir,
            "workers": self.workers,
        }


_TABLE_RE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def _norm_table(text: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in text.split("."))


def find_line(text: str, table: str, key: str) -> int:
    """1-based line where `key` is set inside `[table]` (its header line if not found)."""
    current = ""
    header_line = 0
    key_re = re.compile(rf"^\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        match = _TABLE_RE.match(line)
        if match:
            current = _norm_table(match.group(1))
            if current == table:
                header_line = number
            continue
        if current == table and key_re.match(line):
            return number
    return header_line


class _Checker:
    """Collects problems for one table, each with file, key and line."""

    def __init__(self, path: Path, text: str, table: str, values: dict[str, Any]) -> None:
        self.path, self.text, self.table, self.values = path, text, table, values
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        line = find_line(self.text, self.table, key)
        self.problems.append(f"{self.path}:{line}: {self.table}.{key}: {message}")

    def typed(self, key: str, kind: type | tuple[type, ...], what: str, default: Any) -> Any:
        if key not in self.values:
            return default
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            self.fail(key, f"must be {what}, not {type(value).__name__} {value!r}")
            return None
        return value

    def hostport(self, key: str, default: str, *, allow_off: bool = False) -> HostPort | None:
        text = self.typed(key, str, 'a string "host:port"', default)
        if text is None:
            return None
        if allow_off and text.strip().lower() in ("off", ""):
            return None
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            self.fail(key, f'{text!r}: write "host:port"' + (' or "off"' if allow_off else ""))
            return None
        if not port.isdigit() or not 0 < int(port) < 65536:
            self.fail(key, f"{text!r}: port must be a number from 1 to 65535")
            return None
        return HostPort(host.strip("[]"), int(port))


STRATUM_KEYS = (
    "chain",
    "payout_address",
    "pools",
    "sv2_listen",
    "sv1_listen",
    "shares_per_minute",
    "node_tp",
    "node_tp_key",
    "jds_listen",
    "node_rpc",
    "node_rpc_cookie_dir",
    "workers",
)
MAX_WORKERS = 64


def _stratum(path: Path, text: str, data: dict[str, Any], default_chain: str) -> StratumConfig:
    table = data.get("modules", {}).get("stratum-v2")
    if not isinstance(table, dict):
        raise ConfigError([f"{path}: no [{STRATUM_TABLE}] table; add one with payout_address"])
    node_chain = data.get("node", {}).get("chain") if isinstance(data.get("node"), dict) else None
    if isinstance(node_chain, str) and node_chain in CHAINS:
        default_chain = node_chain  # the stratum module mines on the node's chain by default
    c = _Checker(path, text, STRATUM_TABLE, table)
    for key in table:
        if key not in STRATUM_KEYS:
            c.fail(key, f"unknown key (known: {', '.join(STRATUM_KEYS)})")

    chain = c.typed("chain", str, "a string", default_chain)
    if chain is not None and chain not in CHAINS:
        c.fail("chain", f"{chain!r} is not one of {', '.join(CHAINS)}")
        chain = None

    address = c.typed("payout_address", str, "a string (an address, not a script)", None)
    script = b""
    if "payout_address" not in table:
        c.fail("payout_address", "missing: the address block rewards are paid to")
    elif address is not None and chain is not None:
        try:
            script = address_to_script(address, chain)
        except Exception as exc:
            c.fail("payout_address", f"{address!r} is not a valid {chain} address ({exc})")
            address = None

    pools: list[UpstreamSpec] = []
    raw_pools = c.typed("pools", list, "a list of strings", ["solo"])
    if raw_pools is not None:
        if not raw_pools:
            c.fail("pools", 'is empty: list at least one pool, or "solo"')
        for entry in raw_pools:
            if not isinstance(entry, str):
                c.fail("pools", f"entries must be strings, not {type(entry).__name__} {entry!r}")
                continue
            if entry.strip() == "solo":
                if address is not None and chain is not None and script:
                    pools.append(UpstreamSpec("solo", payout_script=script))
                continue
            try:
                pools.append(parse_upstream(entry, network=chain or "mainnet", user=address or ""))
            except UpstreamConfigError as exc:
                c.fail("pools", str(exc))

    sv2_listen = c.hostport("sv2_listen", "127.0.0.1:34255")
    sv1_listen = c.hostport("sv1_listen", "0.0.0.0:3333", allow_off=True)
    node_tp = c.hostport("node_tp", "127.0.0.1:18447")
    jds_listen = c.hostport("jds_listen", "off", allow_off=True)
    node_rpc = c.hostport("node_rpc", "", allow_off=True)
    cookie_dir = c.typed("node_rpc_cookie_dir", str, "a string (the node's data directory)", None)

    spm = c.typed("shares_per_minute", (int, float), "a number", 6.0)
    if spm is not None and not spm > 0:
        c.fail("shares_per_minute", f"must be above 0, not {spm!r}")

    workers = c.typed("workers", int, "a whole number", 1)
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        c.fail("workers", f"must be from 1 to {MAX_WORKERS} (one per CPU core), not {workers}")
        workers = None
    if workers is not None and workers > 1 and jds_listen is not None:
        c.fail(
            "workers",
            "must be 1 while jds_listen is on: declared jobs are checked in one process; "
            'set workers = 1 or jds_listen = "off"',
        )

    key = c.typed("node_tp_key", str, "a string (base58 authority key)", None)
    if key is not None:
        try:
            decode_authority_public_key(key)
        except KeyFormatError as exc:
            c.fail("node_tp_key", f"bad authority key: {exc}")

    if c.problems:
        raise ConfigError(c.problems)
    assert chain is not None and address is not None and sv2_listen and node_tp
    return StratumConfig(
        chain=chain,
        payout_address=address,
        payout_script=script,
        pools=tuple(pools),
        sv2_listen=sv2_listen,
        sv1_listen=sv1_listen,
        shares_per_minute=float(spm),
        node_tp=node_tp,
        node_tp_key=key,
        jds_listen=jds_listen,
        node_rpc=node_rpc,
        node_rpc_cookie_dir=cookie_dir,
        workers=workers or 1,
    )


def load_config(path: Path | str) -> tuple[str, dict[str, Any]]:
    """The file's text and parsed TOML; syntax errors keep tomllib's line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


def load_stratum_config(path: Path | str, *, default_chain: str = "mainnet") -> StratumConfig:
    text, data = load_config(path)
    return _stratum(Path(path), text, data, default_chain)

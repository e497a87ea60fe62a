"""Upstreams from what users write: pool URLs and a payout address.

- `stratum2+tcp://host:port/<authority key>`: SV2 pool (the key in its base58 text form, as
  pools publish it; without it the pool's certificate is not checked — refused unless
  `allow_unverified`).
- `stratum2+tcp://host:port/<authority key>?jds=host:port`: the same pool, but mined with our
  node's templates, declared to its Job Declaration Server at `jds` (Noise-checked with the
  pool's key; `&jds_key=<key>` when the JDS has its own). Needs the node's template provider.
- `stratum+tcp://host:port`: SV1 pool (translated).
- `solo:<address>`: our own node's templates paying `<address>` (checked for the network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from appliance.stratum_v2.source import TemplateSource
from appliance.stratum_v2.upstream.base import Upstream
from appliance.stratum_v2.upstream.errors import UpstreamConfigError
from appliance.stratum_v2.upstream.jd import JdConfig, JdUpstream
from appliance.stratum_v2.upstream.solo import SoloUpstream
from appliance.stratum_v2.upstream.sv1_pool import Sv1PoolConfig, Sv1PoolUpstream
from appliance.stratum_v2.upstream.sv2_pool import Sv2PoolConfig, Sv2PoolUpstream
from protocols.bitcoin.address import address_to_script
from protocols.sv2.errors import KeyFormatError
from protocols.sv2.keys import decode_authority_public_key

__all__ = ["UpstreamSpec", "build_upstream", "parse_upstream"]

SV2_SCHEMES = ("stratum2+tcp", "sv2")
SV1_SCHEMES = ("stratum+tcp", "sv1")


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    kind: str  # "sv2" | "jd" | "sv1" | "solo"
    host: str = ""
    port: int = 0
    authority_key: str | None = None
    user: str = ""
    password: str = "x"
    payout_script: bytes = b""
    jds_host: str = ""
    jds_port: int = 0
    jds_key: str | None = None

    @property
    def name(self) -> str:
        if self.kind == "solo":
            return "solo"
        return f"{self.kind}://{self.host}:{self.port}"


def parse_upstream(
    url: str,
    *,
    user: str = "",
    password: str = "x",
    network: str = "mainnet",
    allow_unverified: bool = False,
) -> UpstreamSpec:
    """Validate one upstream entry; errors name the entry and what to write instead."""
    text = url.strip()
    if text.startswith("solo:"):
        address = text[len("solo:") :]
        try:
            script = address_to_script(address, network)
        except Exception as exc:
            raise UpstreamConfigError(
                f"{url!r}: {address!r} is not a valid {network} address ({exc})"
            ) from None
        return UpstreamSpec("solo", payout_script=script)
    parts = urlsplit(text)
    if parts.scheme not in SV2_SCHEMES + SV1_SCHEMES:
        raise UpstreamConfigError(
            f"{url!r}: use stratum2+tcp://host:port/<authority key>, "
            "stratum+tcp://host:port or solo:<address>"
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise UpstreamConfigError(f"{url!r}: host and port are required (host:port)")
    if parts.scheme in SV1_SCHEMES:
        if not user:
            raise UpstreamConfigError(f"{url!r}: an SV1 pool needs a user (worker name)")
        return UpstreamSpec("sv1", host, port, None, user, password)
    key = parts.path.strip("/") or None
    if key is None and not allow_unverified:
        raise UpstreamConfigError(
            f"{url!r}: append the pool's authority key (stratum2+tcp://host:port/<key>) so "
            "its certificate can be checked"
        )
    _check_key(url, key)
    if not parts.query:
        return UpstreamSpec("sv2", host, port, key, user or "blvm", password)
    jds_host, jds_port, jds_key = _jds(url, parts.query)
    return UpstreamSpec(
        "jd", host, port, key, user or "blvm", password,
        jds_host=jds_host, jds_port=jds_port, jds_key=jds_key,
    )  # fmt: skip


def _check_key(url: str, key: str | None) -> None:
    if key is not None:
        try:
            decode_authority_public_key(key)
        except KeyFormatError as exc:
            raise UpstreamConfigError(f"{url!r}: bad authority key: {exc}") from None


def _jds(url: str, query: str) -> tuple[str, int, str | None]:
    """`jds=host:port` and an optional `jds_key=<key>` from a pool URL's query."""
    usage = "write stratum2+tcp://host:port/<key>?jds=host:port[&jds_key=<key>]"
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"jds", "jds_key"})
    if unknown or len(params.get("jds", [])) != 1 or len(params.get("jds_key", [])) > 1:
        raise UpstreamConfigError(f"{url!r}: unknown or repeated options {unknown}; {usage}")
    host, _, port = params["jds"][0].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UpstreamConfigError(f"{url!r}: jds must be host:port; {usage}")
    jds_key = params.get("jds_key", [None])[0]
    _check_key(url, jds_key)
    return host.strip("[]"), int(port), jds_key


def build_upstream(
    spec: UpstreamSpec,
    space: int,
    *,
    solo_source: Callable[[bytes], TemplateSource] | None = None,
    node_tp: tuple[str, int, bytes | None] | None = None,
    nominal_hash_rate: float = 1e12,
) -> Upstream:
    """The upstream object for `spec`; `solo_source(payout_script)` gives the node's source,
    `node_tp` (host, port, authority key) the node's template provider a JD client uses."""
    if spec.kind == "jd":
        if node_tp is None:
            raise UpstreamConfigError(f"{spec.name}: job declaration needs the node's node_tp")
        tp_host, tp_port, tp_key = node_tp
        jd = JdConfig(
            spec.host, spec.port, spec.jds_host, spec.jds_port, spec.authority_key,
            tp_host, tp_port, tp_key, jds_authority_key=spec.jds_key, user_identity=spec.user,
            nominal_hash_rate=nominal_hash_rate,
        )  # fmt: skip
        return JdUpstream(jd, space, name=spec.name)
    if spec.kind == "sv2":
        config = Sv2PoolConfig(
            spec.host, spec.port, spec.authority_key, spec.user, nominal_hash_rate
        )
        return Sv2PoolUpstream(config, space)
    if spec.kind == "sv1":
        return Sv1PoolUpstream(Sv1PoolConfig(spec.host, spec.port, spec.user, spec.password), space)
    if spec.kind == "solo":
        if solo_source is None:
            raise UpstreamConfigError("solo mining needs the node's template source")
        return SoloUpstream(solo_source(spec.payout_script), space)
    raise UpstreamConfigError(f"unknown upstream kind {spec.kind!r}")

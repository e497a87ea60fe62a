"""Upstreams from what users write: pool URLs and a payout address.

- `stratum2+tcp://host:port/<authority key>`: SV2 pool (the key in its base58 text form, as
  pools publish it; without it the pool's certificate is not checked — refused unless
  `allow_unverified`).
- `stratum+tcp://host:port`: SV1 pool (translated).
- `solo:<address>`: our own node's templates paying `<address>` (checked for the network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from appliance.stratum_v2.source import TemplateSource
from appliance.stratum_v2.upstream.base import Upstream
from appliance.stratum_v2.upstream.errors import UpstreamConfigError
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
    kind: str  # "sv2" | "sv1" | "solo"
    host: str = ""
    port: int = 0
    authority_key: str | None = None
    user: str = ""
    password: str = "x"
    payout_script: bytes = b""

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
    if key is not None:
        try:
            decode_authority_public_key(key)
        except KeyFormatError as exc:
            raise UpstreamConfigError(f"{url!r}: bad authority key: {exc}") from None
    return UpstreamSpec("sv2", host, port, key, user or "blvm", password)


def build_upstream(
    spec: UpstreamSpec,
    space: int,
    *,
    solo_source: Callable[[bytes], TemplateSource] | None = None,
    nominal_hash_rate: float = 1e12,
) -> Upstream:
    """The upstream object for `spec`; `solo_source(payout_script)` gives the node's source."""
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

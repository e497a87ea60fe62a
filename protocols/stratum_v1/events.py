"""Stratum V1 messages as typed events.

Hex on the wire becomes ``bytes`` or ``int`` here, so callers never juggle byte orders:
``Notify.prevhash`` is in block-header byte order (the connection undoes stratum's
word swap), ``merkle_branch`` entries are raw SHA256d outputs, and 32-bit header fields
(version, nbits, ntime, nonce) are plain integers.

Requests carry ``req_id``; a client leaves it ``None`` and its connection assigns one.
Responses received by a client carry the ``request`` they answer (not compared).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RequestId = int | str

DEFAULT_SUBSCRIPTION_ID = "1"
VERSION_ROLLING = "version-rolling"
VERSION_ROLLING_MASK = "version-rolling.mask"
VERSION_ROLLING_MIN_BIT_COUNT = "version-rolling.min-bit-count"


@dataclass(frozen=True, slots=True)
class RpcError:
    """A JSON-RPC error, sent by stratum pools as ``[code, message, traceback]``."""

    code: int
    message: str
    data: Any = None


# --- client → server requests -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    user_agent: str | None = None
    session_id: str | None = None
    req_id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class Authorize:
    username: str
    password: str = ""
    req_id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class Configure:
    """BIP310 ``mining.configure``: extension names plus their ``"ext.param"`` parameters."""

    extensions: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    req_id: RequestId | None = None

    @classmethod
    def version_rolling(
        cls, mask: int, min_bit_count: int = 0, req_id: RequestId | None = None
    ) -> Configure:
        params = {VERSION_ROLLING_MASK: f"{mask:08x}", VERSION_ROLLING_MIN_BIT_COUNT: min_bit_count}
        return cls((VERSION_ROLLING,), params, req_id)

    @property
    def version_rolling_mask(self) -> int | None:
        """The miner's requested mask, or ``None`` when version rolling is not asked for."""
        if VERSION_ROLLING not in self.extensions:
            return None
        raw = self.params.get(VERSION_ROLLING_MASK, "ffffffff")
        return _mask_value(raw)

    @property
    def version_rolling_min_bit_count(self) -> int:
        """Integer per BIP310, or hex text as SRI's sv1_api sends it; capped at 32."""
        raw = self.params.get(VERSION_ROLLING_MIN_BIT_COUNT, 0)
        if isinstance(raw, str):
            raw = _mask_value(raw)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            return 0
        return min(raw, 32)


@dataclass(frozen=True, slots=True)
class SuggestDifficulty:
    difficulty: float
    req_id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class ExtranonceSubscribe:
    req_id: RequestId | None = None


@dataclass(slots=True)  # not frozen: built once per share, and a frozen init costs more
class Submit:
    worker: str
    job_id: str
    extranonce2: bytes
    ntime: int
    nonce: int
    version_bits: int | None = None
    req_id: RequestId | None = None


# --- server → client requests (answered by the client) ------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """``mining.ping``: liveness probe some pools send; answered with ``Pong``."""

    req_id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class GetVersion:
    """``client.get_version``: the pool asks for the miner's user agent."""

    req_id: RequestId | None = None


# --- responses ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    req_id: RequestId
    extranonce1: bytes
    extranonce2_size: int
    subscriptions: tuple[tuple[str, str], ...] = (
        ("mining.set_difficulty", DEFAULT_SUBSCRIPTION_ID),
        ("mining.notify", DEFAULT_SUBSCRIPTION_ID),
    )
    request: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class AuthorizeResult:
    req_id: RequestId
    authorized: bool
    error: RpcError | None = None
    request: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ConfigureResult:
    """Answer to ``mining.configure``. ``version_rolling_mask`` is the negotiated mask."""

    req_id: RequestId
    version_rolling: bool | None = None
    version_rolling_mask: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    request: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    req_id: RequestId
    accepted: bool
    error: RpcError | None = None
    request: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Ack:
    """Plain result for requests without a typed answer (suggest_difficulty, extranonce.subscribe)."""

    req_id: RequestId
    result: Any = True
    request: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """Any request refused with an error and no usable result."""

    req_id: RequestId
    error: RpcError
    request: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Pong:
    req_id: RequestId
    request: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class VersionResult:
    req_id: RequestId
    version: str
    request: Any = field(default=None, compare=False)


# --- server → client notifications --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetDifficulty:
    difficulty: float


@dataclass(frozen=True, slots=True)
class Notify:
    job_id: str
    prevhash: bytes
    coinb1: bytes
    coinb2: bytes
    merkle_branch: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool


@dataclass(frozen=True, slots=True)
class SetExtranonce:
    extranonce1: bytes
    extranonce2_size: int


@dataclass(frozen=True, slots=True)
class SetVersionMask:
    """BIP310 ``mining.set_version_mask``: the pool changes the negotiated mask."""

    mask: int


@dataclass(frozen=True, slots=True)
class Reconnect:
    """``client.reconnect``: all fields optional (``None`` = same host/port, now)."""

    host: str | None = None
    port: int | None = None
    wait_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class ShowMessage:
    message: str


# --- anything else ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnknownMethod:
    """A method this package does not model; the receiver decides (servers answer code 20)."""

    method: str
    params: Any
    req_id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class UnexpectedResponse:
    """A response whose id matches no request we sent; reported, never fatal."""

    req_id: RequestId | None
    result: Any
    error: RpcError | None


ClientRequest = Subscribe | Authorize | Configure | SuggestDifficulty | ExtranonceSubscribe | Submit
ServerRequest = Ping | GetVersion
ServerNotification = (
    SetDifficulty | Notify | SetExtranonce | SetVersionMask | Reconnect | ShowMessage
)
ServerResponse = (
    SubscribeResult | AuthorizeResult | ConfigureResult | SubmitResult | Ack | ErrorResponse
)
ClientResponse = Pong | VersionResult


def _mask_value(raw: Any) -> int | None:
    if isinstance(raw, str) and 0 < len(raw) <= 8 and not raw.strip("0123456789abcdefABCDEF"):
        return int(raw, 16)
    return None

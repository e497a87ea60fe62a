"""Consensus parameters of the networks we validate (Bitcoin Core's chainparams).

API (stable; the chainstate code imports these):

- ``ChainParams``: frozen dataclass, one per network. Field names follow Core's
  ``Consensus::Params`` in snake case: ``pow_limit`` (int), ``pow_limit_bits``,
  ``pow_target_spacing``/``pow_target_timespan`` (s), ``pow_allow_min_difficulty_blocks``,
  ``pow_no_retargeting``, ``enforce_bip94``, ``bip34_height``/``bip65_height``/
  ``bip66_height``/``csv_height``/``segwit_height``/``taproot_height``,
  ``script_flag_exceptions`` ((block hash, flags) pairs), ``subsidy_halving_interval``,
  ``coinbase_maturity``, ``max_future_block_time``, ``median_time_span``,
  ``prune_after_height``, ``signet_challenge``, ``minimum_chain_work``, ``assume_valid``,
  ``rule_change_activation_threshold``/``miner_confirmation_window`` (BIP9 signalling),
  ``default_port``, ``message_start`` and the genesis block (``genesis_bytes``,
  ``genesis_hash`` in internal byte order, ``genesis_header``, ``genesis_block()``).
  ``difficulty_adjustment_interval`` = timespan / spacing (2016).
- Instances ``MAINNET``, ``TESTNET4``, ``SIGNET``, ``REGTEST``; ``get(name)`` accepts our
  names (``mainnet``, ``testnet4``, ``signet``, ``regtest``) and Core's (``main``, ``test4``…).
  ``params.network`` is the matching key of ``protocols.bitcoin.networks``.
- ``block_subsidy(height, params)`` -> satoshis (Core's GetBlockSubsidy).
- ``ScriptFlag``: the consensus script-verification flag bits (same values as Core and
  libbitcoinkernel) used by ``script_flag_exceptions`` and ``node.chain.scriptcheck``.

Every genesis block is rebuilt here from its coinbase (as Core's CreateGenesisBlock does) and
checked against the published hash at import time, so a typo cannot slip through.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.hashes import hex_to_hash, sha256d
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.networks import Network, get_network
from protocols.bitcoin.pow import target_to_bits
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN


class ScriptFlag(enum.IntFlag):
    """Consensus script-verification flags (Core's SCRIPT_VERIFY_* bit positions)."""

    NONE = 0
    P2SH = 1 << 0
    DERSIG = 1 << 2
    NULLDUMMY = 1 << 4
    CHECKLOCKTIMEVERIFY = 1 << 9
    CHECKSEQUENCEVERIFY = 1 << 10
    WITNESS = 1 << 11
    TAPROOT = 1 << 17
    ALL = P2SH | DERSIG | NULLDUMMY | CHECKLOCKTIMEVERIFY | CHECKSEQUENCEVERIFY | WITNESS | TAPROOT


def _push(data: bytes) -> bytes:
    """Minimal script push of ``data`` (CScript << vector)."""
    n = len(data)
    if n < 0x4C:
        return bytes((n,)) + data
    if n <= 0xFF:
        return b"\x4c" + bytes((n,)) + data
    return b"\x4d" + n.to_bytes(2, "little") + data


_OP_CHECKSIG = b"\xac"
_SATOSHI_MSG = b"The Times 03/Jan/2009 Chancellor on brink of second bailout for banks"
_SATOSHI_KEY = bytes.fromhex(
    "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f"
    "35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
)


def build_genesis(
    message: bytes, output_script: bytes, time: int, nonce: int, bits: int, version: int = 1
) -> Block:
    """Core's CreateGenesisBlock: scriptSig = push(486604799) push(4) push(message)."""
    script_sig = _push((486604799).to_bytes(4, "little")) + _push(b"\x04") + _push(message)
    coinbase = Tx(1, [TxIn(NULL_OUTPOINT, script_sig)], [TxOut(50 * COIN, output_script)], 0)
    root, _ = merkle_root([coinbase.txid])
    header = BlockHeader(version, b"\x00" * 32, root, time, bits, nonce)
    return Block(header, [coinbase])


@dataclass(frozen=True, slots=True)
class ChainParams:
    name: str
    network: str  # key in protocols.bitcoin.networks
    genesis_bytes: bytes
    genesis_hash: bytes  # internal byte order
    pow_limit: int
    bip34_height: int
    bip65_height: int
    bip66_height: int
    csv_height: int
    segwit_height: int
    taproot_height: int
    prune_after_height: int
    default_port: int
    message_start: bytes
    pow_target_spacing: int = 600
    pow_target_timespan: int = 14 * 24 * 60 * 60
    pow_allow_min_difficulty_blocks: bool = False
    pow_no_retargeting: bool = False
    enforce_bip94: bool = False
    bip34_hash: bytes | None = None
    script_flag_exceptions: tuple[tuple[bytes, int], ...] = ()
    subsidy_halving_interval: int = 210_000
    coinbase_maturity: int = 100
    max_future_block_time: int = 2 * 60 * 60
    median_time_span: int = 11
    signet_challenge: bytes | None = None
    minimum_chain_work: int = 0
    assume_valid: bytes | None = None  # block hash, internal byte order
    rule_change_activation_threshold: int = 1815
    miner_confirmation_window: int = 2016
    aliases: tuple[str, ...] = field(default=())

    @property
    def difficulty_adjustment_interval(self) -> int:
        return self.pow_target_timespan // self.pow_target_spacing

    @property
    def pow_limit_bits(self) -> int:
        return target_to_bits(self.pow_limit)

    @property
    def genesis_header(self) -> BlockHeader:
        return BlockHeader.from_bytes(self.genesis_bytes[:80])

    def genesis_block(self) -> Block:
        return Block.from_bytes(self.genesis_bytes)

    @property
    def is_signet(self) -> bool:
        return self.signet_challenge is not None

    def script_flag_exception(self, block_hash: bytes) -> int | None:
        """Flags replacing the default P2SH|WITNESS|TAPROOT for one historical block, if any."""
        for h, flags in self.script_flag_exceptions:
            if h == block_hash:
                return flags
        return None

    def networks_entry(self) -> Network:
        """The matching ``protocols.bitcoin.networks`` entry (address prefixes, P2P magic)."""
        return get_network(self.network)


def _make(
    *,
    genesis: Block,
    expect_hash: str,
    **kwargs: object,
) -> ChainParams:
    raw = genesis.serialize()
    h = sha256d(raw[:80])
    if h != hex_to_hash(expect_hash):
        raise AssertionError(f"genesis of {kwargs['name']} rebuilt wrongly: {h[::-1].hex()}")
    return ChainParams(genesis_bytes=raw, genesis_hash=h, **kwargs)  # type: ignore[arg-type]


_SATOSHI_SCRIPT = _push(_SATOSHI_KEY) + _OP_CHECKSIG
_POW_LIMIT_MAIN = (1 << 224) - 1  # 00000000ffff...ff

MAINNET = _make(
    name="mainnet",
    network="mainnet",
    aliases=("main", "bitcoin"),
    genesis=build_genesis(_SATOSHI_MSG, _SATOSHI_SCRIPT, 1231006505, 2083236893, 0x1D00FFFF),
    expect_hash="000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    pow_limit=_POW_LIMIT_MAIN,
    bip34_height=227931,
    bip34_hash=hex_to_hash("000000000000024b89b42a942fe0d9fea3bb44ab7bd1b19115dd6a759c0808b8"),
    bip65_height=388381,
    bip66_height=363725,
    csv_height=419328,
    segwit_height=481824,
    taproot_height=709632,
    script_flag_exceptions=(
        (  # BIP16 exception: the one block that violated P2SH rules
            hex_to_hash("00000000000002dc756eebf4f49723ed8d30cc28a5f108eb94b1ba88ac4f9c22"),
            int(ScriptFlag.NONE),
        ),
        (  # Taproot exception: the one block that violated taproot rules before activation
            hex_to_hash("0000000000000000000f14c35b2d841e986ab5441de8c585d5ffe55ea1e395ad"),
            int(ScriptFlag.P2SH | ScriptFlag.WITNESS),
        ),
    ),
    prune_after_height=100_000,
    default_port=8333,
    message_start=bytes.fromhex("f9beb4d9"),
    minimum_chain_work=0x63C4EBD298DB40AF57541800,
    assume_valid=hex_to_hash("000000000000000000026811d149d4d261995ec5b3f64f439a0a10e1a464af9a"),
)

TESTNET4 = _make(
    name="testnet4",
    network="testnet4",
    aliases=("test4",),
    genesis=build_genesis(
        b"03/May/2024 000000000000000000001ebd58c244970b3aa9d783bb001011fbe8ea8e98e00e",
        _push(b"\x00" * 33) + _OP_CHECKSIG,
        1714777860,
        393743547,
        0x1D00FFFF,
    ),
    expect_hash="00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
    pow_limit=_POW_LIMIT_MAIN,
    pow_allow_min_difficulty_blocks=True,
    enforce_bip94=True,
    bip34_height=1,
    bip65_height=1,
    bip66_height=1,
    csv_height=1,
    segwit_height=1,
    taproot_height=0,
    prune_after_height=1000,
    default_port=48333,
    message_start=bytes.fromhex("1c163f28"),
    rule_change_activation_threshold=1512,
)

_SIGNET_CHALLENGE = bytes.fromhex(
    "512103ad5e0edad18cb1f0fc0d28a3d4f1f3e445640337489abb10404f2d1e086be430210359ef50219"
    "64fe22d6f8e05b2463c9540ce96883fe3b278760f048f5189f2e6c452ae"
)

SIGNET = _make(
    name="signet",
    network="signet",
    genesis=build_genesis(_SATOSHI_MSG, _SATOSHI_SCRIPT, 1598918400, 52613770, 0x1E0377AE),
    expect_hash="00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    pow_limit=0x377AE << (8 * 27),  # 00000377ae00...00
    bip34_height=1,
    bip65_height=1,
    bip66_height=1,
    csv_height=1,
    segwit_height=1,
    taproot_height=0,
    prune_after_height=1000,
    default_port=38333,
    # Core: the first 4 bytes of sha256d(CompactSize(len) || challenge).
    message_start=sha256d(bytes((len(_SIGNET_CHALLENGE),)) + _SIGNET_CHALLENGE)[:4],
    signet_challenge=_SIGNET_CHALLENGE,
)

REGTEST = _make(
    name="regtest",
    network="regtest",
    genesis=build_genesis(_SATOSHI_MSG, _SATOSHI_SCRIPT, 1296688602, 2, 0x207FFFFF),
    expect_hash="0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
    pow_limit=(1 << 255) - 1,  # 7fff...ff
    pow_allow_min_difficulty_blocks=True,
    pow_no_retargeting=True,
    bip34_height=1,
    bip65_height=1,
    bip66_height=1,
    csv_height=1,
    segwit_height=0,
    taproot_height=0,
    subsidy_halving_interval=150,
    prune_after_height=1000,
    default_port=18444,
    message_start=bytes.fromhex("fabfb5da"),
    rule_change_activation_threshold=108,
    miner_confirmation_window=144,
)

ALL: tuple[ChainParams, ...] = (MAINNET, TESTNET4, SIGNET, REGTEST)
_BY_NAME = {alias: p for p in ALL for alias in (p.name, *p.aliases)}
NAMES: tuple[str, ...] = tuple(p.name for p in ALL)


def get(name: str) -> ChainParams:
    """Parameters by network name (``mainnet``/``main``, ``testnet4``, ``signet``, ``regtest``)."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise KeyError(f"unknown chain {name!r}; choose one of {', '.join(NAMES)}") from None


def block_subsidy(height: int, params: ChainParams) -> int:
    """New coins a block at ``height`` may create: 50 BTC halved every interval, 0 after 64."""
    halvings = height // params.subsidy_halving_interval
    if halvings >= 64:
        return 0
    return (50 * COIN) >> halvings

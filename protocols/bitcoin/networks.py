"""Per-network constants shared by the address codecs and the P2P layer.

Values are Bitcoin Core's chainparams. testnet3, testnet4 and signet share their
address prefixes and bech32 HRP, so an address alone cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.bitcoin.errors import BitcoinProtocolError


class UnknownNetworkError(BitcoinProtocolError):
    """A network name this package does not know."""


@dataclass(frozen=True, slots=True)
class Network:
    name: str  # our canonical name: mainnet, testnet3, testnet4, signet, regtest
    core_name: str  # Bitcoin Core's chain name: main, test, testnet4, signet, regtest
    magic: bytes  # P2P message start (pchMessageStart), 4 bytes as sent on the wire
    default_port: int
    bech32_hrp: str
    p2pkh_prefix: int  # base58 version byte of P2PKH addresses
    p2sh_prefix: int
    wif_prefix: int  # base58 version byte of WIF private keys
    rpc_port: int
    dns_seeds: tuple[str, ...] = ()  # hosts whose A records are nodes to dial first


MAINNET = Network(
    "mainnet",
    "main",
    bytes.fromhex("f9beb4d9"),
    8333,
    "bc",
    0x00,
    0x05,
    0x80,
    8332,
    (
        "seed.bitcoin.sipa.be",
        "dnsseed.bluematt.me",
        "seed.bitcoin.jonasschnelli.ch",
        "seed.btc.petertodd.net",
        "seed.bitcoin.sprovoost.nl",
        "dnsseed.emzy.de",
        "seed.bitcoin.wiz.biz",
        "seed.mainnet.achownodes.xyz",
    ),
)
TESTNET3 = Network(
    "testnet3", "test", bytes.fromhex("0b110907"), 18333, "tb", 0x6F, 0xC4, 0xEF, 18332
)
TESTNET4 = Network(
    "testnet4",
    "testnet4",
    bytes.fromhex("1c163f28"),
    48333,
    "tb",
    0x6F,
    0xC4,
    0xEF,
    48332,
    ("seed.testnet4.bitcoin.sprovoost.nl", "seed.testnet4.wiz.biz"),
)
SIGNET = Network(
    "signet",
    "signet",
    bytes.fromhex("0a03cf40"),
    38333,
    "tb",
    0x6F,
    0xC4,
    0xEF,
    38332,
    ("seed.signet.bitcoin.sprovoost.nl", "seed.signet.achownodes.xyz"),
)
REGTEST = Network(
    "regtest", "regtest", bytes.fromhex("fabfb5da"), 18444, "bcrt", 0x6F, 0xC4, 0xEF, 18443
)

NETWORKS: dict[str, Network] = {n.name: n for n in (MAINNET, TESTNET3, TESTNET4, SIGNET, REGTEST)}

_ALIASES = {
    "main": MAINNET,
    "bitcoin": MAINNET,
    "test": TESTNET3,
    "testnet": TESTNET3,
}


def get_network(name: str | Network) -> Network:
    """Look a network up by our name, Core's chain name, or common aliases ("main", "test")."""
    if isinstance(name, Network):
        return name
    key = name.strip().lower()
    net = NETWORKS.get(key) or _ALIASES.get(key)
    if net is None:
        known = ", ".join(NETWORKS)
        raise UnknownNetworkError(f"unknown network {name!r}; expected one of: {known}")
    return net


def network_from_magic(magic: bytes) -> Network | None:
    """The network whose P2P message start is ``magic`` (signet: the default signet only)."""
    for net in NETWORKS.values():
        if net.magic == magic:
            return net
    return None

"""`[modules.stratum-v2]` loading: good values resolve; every bad one names file, key, line."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ConfigError, find_line, load_stratum_config
from protocols.bitcoin.address import address_to_script, script_to_address
from protocols.sv2 import keys as sv2keys

REGTEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
MAINNET = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
TP_KEY = sv2keys.encode_authority_public_key(
    bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "blvm.toml"
    path.write_text(body)
    return path


GOOD = f"""# dev config
[node]
chain = "regtest"

[modules.stratum-v2]
chain = "regtest"
payout_address = "{REGTEST}"
pools = ["stratum2+tcp://pool.example:34254/{TP_KEY}", "solo"]
sv2_listen = "127.0.0.1:34255"
sv1_listen = "off"
shares_per_minute = 12
node_tp = "127.0.0.1:18447"
node_tp_key = "{TP_KEY}"

[modules.datum]
enabled = false
"""


def test_good_config_resolves(tmp_path):
    cfg = load_stratum_config(write(tmp_path, GOOD))
    assert cfg.chain == "regtest"
    assert cfg.payout_script == address_to_script(REGTEST, "regtest")
    assert [p.kind for p in cfg.pools] == ["sv2", "solo"]
    assert cfg.pools[1].payout_script == cfg.payout_script
    assert cfg.pools[0].authority_key == TP_KEY
    assert (cfg.sv2_listen.host, cfg.sv2_listen.port) == ("127.0.0.1", 34255)
    assert cfg.sv1_listen is None
    assert cfg.shares_per_minute == 12.0
    assert cfg.node_tp.port == 18447 and cfg.node_tp_key == TP_KEY
    assert cfg.to_dict()["pools"] == ["sv2://pool.example:34254", "solo"]


def test_defaults(tmp_path):
    cfg = load_stratum_config(
        write(tmp_path, f'[modules.stratum-v2]\nchain="regtest"\npayout_address="{REGTEST}"\n')
    )
    assert [p.kind for p in cfg.pools] == ["solo"]
    assert str(cfg.sv1_listen) == "0.0.0.0:3333" and str(cfg.sv2_listen) == "127.0.0.1:34255"
    assert cfg.node_tp_key is None and cfg.shares_per_minute > 0
    assert cfg.workers == 1


def test_workers(tmp_path):
    cfg = load_stratum_config(write(tmp_path, GOOD.replace("node_tp =", "workers = 4\nnode_tp =")))
    assert cfg.workers == 4 and cfg.to_dict()["workers"] == 4


def line_of(text: str, needle: str, after: int = 0) -> int:
    lines = enumerate(text.splitlines(), 1)
    return next(i for i, line in lines if i > after and line.startswith(needle))


@pytest.mark.parametrize(
    ("key", "old", "new", "words"),
    [
        ("shares_per_minute", "shares_per_minute = 12", 'shares_per_minute = "fast"', "number"),
        ("shares_per_minute", "shares_per_minute = 12", "shares_per_minute = 0", "above 0"),
        ("sv2_listen", 'sv2_listen = "127.0.0.1:34255"', "sv2_listen = 34255", "string"),
        (
            "payout_address",
            f'payout_address = "{REGTEST}"',
            f'payout_address = "{MAINNET}"',
            "regtest address",
        ),
        ("pools", "pools = [", 'pools = ["http://pool.example:80", ', "stratum2+tcp"),
        ("pools", "pools = [", 'pools = ["stratum2+tcp://pool.example/x", ', "port"),
        ("sv2_listen", 'sv2_listen = "127.0.0.1:34255"', 'sv2_listen = "127.0.0.1:99999"', "port"),
        ("node_tp", 'node_tp = "127.0.0.1:18447"', 'node_tp = "127.0.0.1:tp"', "port"),
        ("node_tp_key", f'node_tp_key = "{TP_KEY}"', 'node_tp_key = "notakey"', "authority key"),
        ("chain", 'chain = "regtest"\npayout', 'chain = "moon"\npayout', "not one of"),
        ("workers", "shares_per_minute = 12", "shares_per_minute = 12\nworkers = 0", "1 to 64"),
        ("workers", "shares_per_minute = 12", "shares_per_minute = 12\nworkers = 2.5", "whole"),
        (
            "workers",
            "shares_per_minute = 12",
            'shares_per_minute = 12\nworkers = 2\njds_listen = "0.0.0.0:34264"',
            "jds_listen",
        ),
    ],
)
def test_bad_value_names_key_and_line(tmp_path, key, old, new, words):
    text = GOOD.replace(old, new, 1) if key != "chain" else GOOD.replace(old, new)
    assert text != GOOD
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_stratum_config(path)
    message = str(err.value)
    line = line_of(text, key + " =", after=line_of(text, "[modules.stratum-v2]"))
    assert f"{path}:{line}: modules.stratum-v2.{key}:" in message, message
    assert words in message


def test_unknown_key_named_with_line(tmp_path):
    text = GOOD.replace("node_tp =", "vardif = 3\nnode_tp =")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_stratum_config(path)
    assert f"{path}:{line_of(text, 'vardif')}: modules.stratum-v2.vardif: unknown key" in str(
        err.value
    )
    # the [modules.datum] table's "enabled" is not ours to judge
    assert "enabled" not in str(err.value)


def test_several_problems_reported_together(tmp_path):
    text = GOOD.replace("shares_per_minute = 12", "shares_per_minute = -1").replace(
        'sv1_listen = "off"', 'sv1_listen = "nohost"'
    )
    with pytest.raises(ConfigError) as err:
        load_stratum_config(write(tmp_path, text))
    assert len(err.value.problems) == 2


def test_missing_table_and_syntax_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no \[modules\.stratum-v2\]"):
        load_stratum_config(write(tmp_path, "[node]\n"))
    with pytest.raises(ConfigError, match="line 2"):
        load_stratum_config(write(tmp_path, "[node]\nchain = \n"))


def test_find_line_same_key_other_table():
    text = '[a]\nport = 1\n[modules."stratum-v2"]\n\nport = 2\n'
    assert find_line(text, "a", "port") == 2
    assert find_line(text, "modules.stratum-v2", "port") == 5
    assert find_line(text, "modules.stratum-v2", "missing") == 3


def test_script_roundtrip_sanity():
    assert script_to_address(address_to_script(REGTEST, "regtest"), "regtest") == REGTEST

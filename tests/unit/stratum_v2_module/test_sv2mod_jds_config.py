"""`jds_listen` and the node RPC keys of [modules.stratum-v2]: off by default, checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ConfigError, HostPort, load_stratum_config

REGTEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
HEAD = f'[node]\nchain = "regtest"\n[modules.stratum-v2]\npayout_address = "{REGTEST}"\n'


def _load(tmp_path: Path, extra: str):
    path = tmp_path / "blvm.toml"
    path.write_text(HEAD + extra)
    return load_stratum_config(path)


def test_jds_is_off_by_default(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "")
    assert cfg.jds_listen is None and cfg.node_rpc is None and cfg.node_rpc_cookie_dir is None
    assert cfg.to_dict()["jds_listen"] == "off"


def test_jds_listen_and_node_rpc(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        'jds_listen = "0.0.0.0:34264"\nnode_rpc = "127.0.0.1:18443"\n'
        'node_rpc_cookie_dir = "/var/lib/blvm/regtest"\n',
    )
    assert cfg.jds_listen == HostPort("0.0.0.0", 34264)
    assert cfg.node_rpc == HostPort("127.0.0.1", 18443)
    assert cfg.node_rpc_cookie_dir == "/var/lib/blvm/regtest"


def test_bad_jds_listen_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, 'jds_listen = "34264"\n')
    (problem,) = info.value.problems
    assert ":5: modules.stratum-v2.jds_listen:" in problem and "host:port" in problem

"""`blvm stratum` picks its coinbases' extranonce space from the configured pools."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.cli.stratum import extranonce_space
from appliance.config import load_stratum_config
from appliance.stratum_v2.jobs import (
    CHANNEL_PREFIX_SIZE,
    DEFAULT_EXTRANONCE_SPACE,
    SOLO_EXTRANONCE_SPACE,
)
from tests.helpers.sri import SRI_PUBLIC

REGTEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
POOL = f"stratum2+tcp://farm.lan:34255/{SRI_PUBLIC}"


def _space(tmp_path: Path, pools: str | None) -> int:
    body = f'[node]\nchain = "regtest"\n[modules.stratum-v2]\npayout_address = "{REGTEST}"\n'
    if pools is not None:
        body += f"pools = {pools}\n"
    path = tmp_path / "blvm.toml"
    path.write_text(body)
    return extranonce_space(load_stratum_config(path))


@pytest.mark.parametrize(
    ("pools", "space"),
    [
        (None, SOLO_EXTRANONCE_SPACE),  # the default is solo
        ('["solo"]', SOLO_EXTRANONCE_SPACE),
        (f'["solo:{REGTEST}"]', SOLO_EXTRANONCE_SPACE),
        (f'["{POOL}"]', DEFAULT_EXTRANONCE_SPACE),
        (f'["{POOL}", "solo"]', DEFAULT_EXTRANONCE_SPACE),
        ('["stratum+tcp://pool.example:3333"]', DEFAULT_EXTRANONCE_SPACE),
    ],
)
def test_solo_only_uses_the_sv2_maximum_pools_keep_the_default(
    tmp_path: Path, pools: str | None, space: int
) -> None:
    assert _space(tmp_path, pools) == space


def test_solo_space_leaves_room_for_a_chained_appliance() -> None:
    # What our extended channels offer when solo must hold what a module with pools asks.
    assert SOLO_EXTRANONCE_SPACE - CHANNEL_PREFIX_SIZE >= DEFAULT_EXTRANONCE_SPACE
    assert SOLO_EXTRANONCE_SPACE <= 32  # SV2: a standard channel's prefix is a B0_32

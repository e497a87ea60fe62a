"""Fixtures of the SV2 server tests: a regtest chain, our template source on it, server keys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.source import NodeTemplateSource
from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST

PAYOUT = bytes.fromhex("0014") + bytes(20)  # P2WPKH to a zero key hash: regtest only


@pytest.fixture
def node(tmp_path: Path):
    """(chain, source, keys): an empty regtest chain, templates paying PAYOUT, server keys."""
    chain = Chainstate.open(tmp_path / "chain", REGTEST, script_threads=1)
    source = NodeTemplateSource(chain, PAYOUT)
    keys = load_or_create_keys(tmp_path / "keys", now=int(time.time()))
    yield chain, source, keys
    source.close()
    chain.close()

"""NodeLink's coinbase agrees with an independent build; `blvm stratum check` output."""

from __future__ import annotations

import json

from appliance.cli import main
from appliance.stratum_v2.node_link import NodeLink, work_from_new_template
from protocols.bitcoin.block import BlockHeader
from protocols.bitcoin.tx import Tx
from protocols.sv2.messages import NewTemplate, TemplateSetNewPrevHash
from tests.unit.template_provider.tp_tools import client_coinbase

PAYOUT = b"\x00\x14" + b"\x44" * 20
COMMITMENT = b"\x6a\x24\xaa\x21\xa9\xed" + b"\x55" * 32
REGTEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def template(template_id: int = 7, *, future: bool = True) -> NewTemplate:
    out = (0).to_bytes(8, "little") + bytes([len(COMMITMENT)]) + COMMITMENT
    return NewTemplate(
        template_id=template_id,
        future_template=future,
        version=0x20000000,
        coinbase_tx_version=2,
        coinbase_prefix=b"\x02\x10\x27",
        coinbase_tx_input_sequence=0xFFFFFFFF,
        coinbase_tx_value_remaining=50_0000_0000,
        coinbase_tx_outputs_count=1,
        coinbase_tx_outputs=out,
        coinbase_tx_locktime=0,
        merkle_path=(b"\x11" * 32,),
    )


PREV = TemplateSetNewPrevHash(7, b"\x99" * 32, 1_700_000_000, 0x207FFFFF, b"\xff" * 31 + b"\x7f")


def test_sv2mod_work_coinbase_matches_independent_build():
    tpl = template()
    work = work_from_new_template(tpl, PREV, PAYOUT, 7, extranonce_size=16)
    extranonce = bytes(range(16))
    expected = client_coinbase(tpl, extranonce, PAYOUT)
    assert work.coinbase(extranonce) == expected.serialize_without_witness()
    assert work.witness_reserved and work.prev_hash == PREV.prev_hash
    assert work.network_target == int.from_bytes(PREV.target, "little")
    block = work.block(extranonce, _header(work, extranonce))
    assert block.txs[0].serialize() == expected.serialize()  # witness reserved value too
    assert Tx.from_bytes(work.coinbase(extranonce)).outputs[0].script_pubkey == PAYOUT


def _header(work, extranonce):
    return BlockHeader(
        work.version, work.prev_hash, work.merkle_root(extranonce), work.min_ntime, work.nbits, 5
    )


def test_sv2mod_link_activates_future_templates_on_their_prevhash():
    link = NodeLink("127.0.0.1", 1, PAYOUT)
    seen = []
    link.subscribe(seen.append)
    link.handle(template(7))
    assert link.current() is None
    link.handle(PREV)
    assert [w.template_id for w in seen] == [7]
    link.handle(template(8, future=False))  # a mempool update on the same tip: at once
    assert link.current().template_id == 8 and link.current().prev_hash == PREV.prev_hash
    extranonce = bytes(link.extranonce_size)
    block = link.current().block(extranonce, _header(link.current(), extranonce))
    assert link.submit_block(block) == "node-link-down"  # matched, but nothing to send on
    block.header.prev_hash = b"\x00" * 32
    assert link.submit_block(block) == "unknown-template"


def _config(tmp_path, body: str):
    path = tmp_path / "blvm.toml"
    path.write_text(body)
    return str(path)


def test_sv2mod_cli_check_reports_errors_with_lines(tmp_path, capsys):
    bad = f'[modules.stratum-v2]\nchain = "regtest"\npayout_address = "{REGTEST}"\npools = [1]\n'
    path = _config(tmp_path, bad)
    assert main(["stratum", "check", "--config", path, "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert not result["ok"]
    assert result["errors"] == [
        f"{path}:4: modules.stratum-v2.pools: entries must be strings, not int 1"
    ]
    assert main(["stratum", "check", "--config", path]) == 2
    assert f"{path}:4: modules.stratum-v2.pools" in capsys.readouterr().err


def test_sv2mod_cli_check_prints_resolved_settings(tmp_path, capsys):
    path = _config(
        tmp_path, f'[node]\nchain = "regtest"\n[modules.stratum-v2]\npayout_address = "{REGTEST}"\n'
    )
    assert main(["stratum", "check", "--config", path, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["chain"] == "regtest" and result["pools"] == ["solo"]
    assert main(["stratum", "--config", path, "check"]) == 0  # --config before the subcommand
    assert "payout_address: " + REGTEST in capsys.readouterr().out

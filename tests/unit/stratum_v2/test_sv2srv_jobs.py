"""Jobs from work templates: coinbase split, per-channel merkle roots, clean jobs."""

from __future__ import annotations

from appliance.stratum_v2.jobs import ChannelKind, work_from_block_template
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.tx import Tx
from protocols.sv2.messages import NewExtendedMiningJob, NewMiningJob, SetNewPrevHash
from tests.unit.stratum_v2.sv2srv_vectors import (
    NTIME,
    PATH,
    PREFIX,
    PREV,
    SPACE,
    SUFFIX,
    VERSION,
    channel,
    root_by_hand,
    work,
)


def test_standard_channel_gets_header_only_job_with_its_own_merkle_root() -> None:
    ch = channel(ChannelKind.STANDARD, 1 << 250)
    msgs = ch.jobs.new_job(work())
    assert [type(m) for m in msgs] == [NewMiningJob, SetNewPrevHash]
    job, activate = msgs
    assert job.min_ntime is None  # first job on a channel is a future job
    assert job.merkle_root == root_by_hand(ch.jobs.extranonce_prefix)
    assert (activate.job_id, activate.prev_hash, activate.min_ntime) == (job.job_id, PREV, NTIME)
    other = channel(ChannelKind.STANDARD, 1 << 250, channel_id=8)
    assert other.jobs.new_job(work())[0].merkle_root != job.merkle_root


def test_extended_channel_gets_prefix_suffix_and_path() -> None:
    ch = channel(ChannelKind.EXTENDED, 1 << 250)
    job = ch.jobs.new_job(work())[0]
    assert isinstance(job, NewExtendedMiningJob)
    assert (job.coinbase_tx_prefix, job.coinbase_tx_suffix) == (PREFIX, SUFFIX)
    assert job.merkle_path == PATH and job.version == VERSION and job.version_rolling_allowed
    assert ch.jobs.miner_extranonce_size(work()) == SPACE - 4


def test_same_prevhash_is_not_clean_and_new_prevhash_makes_old_jobs_stale() -> None:
    ch = channel(ChannelKind.STANDARD, 1 << 250)
    first = ch.jobs.new_job(work())[0].job_id
    update = ch.jobs.new_job(work(template_id=2))
    assert len(update) == 1 and update[0].min_ntime == NTIME
    assert ch.jobs.lookup(first) is not None and not ch.jobs.is_stale(first)
    clean = ch.jobs.new_job(work(prev=bytes(32), template_id=3))
    assert [type(m) for m in clean] == [NewMiningJob, SetNewPrevHash]
    assert ch.jobs.is_stale(first) and ch.jobs.is_stale(update[0].job_id)
    assert ch.jobs.lookup(first) is None
    assert len({first, update[0].job_id, clean[0].job_id}) == 3  # ids never reused


def test_split_of_a_real_template_rebuilds_the_block(tmp_path) -> None:
    from node.chain.chainstate import Chainstate
    from node.chain.params import REGTEST
    from node.mining.template import TemplateBuilder
    from protocols.bitcoin.block import BlockHeader

    with Chainstate.open(tmp_path / "c", REGTEST, script_threads=1) as chain:
        template = TemplateBuilder(chain).build()
        w = work_from_block_template(template, b"\x51", 1, coinbase_tag=b"/t/")
        extranonce = bytes(range(SPACE))
        coinbase = Tx.from_bytes(w.coinbase(extranonce))
        assert coinbase.inputs[0].script_sig.startswith(b"\x51" + extranonce)  # BIP34 height 1
        assert coinbase.outputs[0].value == template.coinbasevalue
        header = BlockHeader(w.version, w.prev_hash, w.merkle_root(extranonce), 0, w.nbits, 0)
        block = w.block(extranonce, header)
        assert block is not None
        assert merkle_root([t.txid for t in block.txs])[0] == header.merkle_root
        assert block.txs[0].inputs[0].witness == [bytes(32)]  # witness reserved value
        assert block.txs[0].txid == coinbase.txid


def test_group_channel_sends_one_extended_job_for_all_members() -> None:
    from appliance.stratum_v2.jobs import GroupChannel

    group = GroupChannel(99)
    a = channel(ChannelKind.STANDARD, 1 << 250, channel_id=1)
    b = channel(ChannelKind.STANDARD, 1 << 250, channel_id=2)
    first = group.add(a.jobs, work())
    assert [type(m) for m in first] == [NewExtendedMiningJob, SetNewPrevHash]
    assert {m.channel_id for m in first} == {99}
    job_id = first[0].job_id
    late = group.add(b.jobs, work())  # catch-up on its own channel, same job id
    assert [(type(m), m.channel_id, m.job_id) for m in late] == [
        (NewMiningJob, 2, job_id),
        (SetNewPrevHash, 2, job_id),
    ]
    update = group.new_job(work(template_id=2))
    assert len(update) == 1 and update[0].min_ntime == NTIME and update[0].channel_id == 99
    for member in (a, b):
        job = member.jobs.lookup(update[0].job_id)
        assert job is not None and job.merkle_root == root_by_hand(member.jobs.extranonce_prefix)

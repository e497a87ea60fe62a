"""Job Declaration client: the declared coinbase in its three shapes, and the session's
decisions (setup, token → declare → custom job → work, failures, shares, blocks)."""

from __future__ import annotations

import pytest

from appliance.config import ConfigError, load_stratum_config
from appliance.stratum_v2.upstream.base import UpstreamShare
from appliance.stratum_v2.upstream.errors import UpstreamConfigError, UpstreamError
from appliance.stratum_v2.upstream.factory import build_upstream, parse_upstream
from appliance.stratum_v2.upstream.jd import JdUpstream
from appliance.stratum_v2.upstream.jd_job import (
    JdJobError,
    PoolChannel,
    build_job,
    parse_output_array,
    serialize_output_array,
)
from appliance.stratum_v2.upstream.jd_session import DECLARE_TX_DATA, JdSession, Peer
from node.mining.assembler import witness_commitment_script
from protocols.bitcoin.address import encode_segwit_address
from protocols.bitcoin.compact import read_compact_size
from protocols.bitcoin.merkle import merkle_branch, merkle_root, root_from_branch
from protocols.bitcoin.script import push_int
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut
from protocols.sv2.messages import (
    AllocateMiningJobToken,
    AllocateMiningJobTokenSuccess,
    CoinbaseOutputConstraints,
    DeclareMiningJob,
    DeclareMiningJobError,
    DeclareMiningJobSuccess,
    MiningClientFlags,
    NewTemplate,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    Protocol,
    ProvideMissingTransactions,
    ProvideMissingTransactionsSuccess,
    PushSolution,
    RequestTransactionData,
    RequestTransactionDataSuccess,
    SetCustomMiningJob,
    SetCustomMiningJobError,
    SetCustomMiningJobSuccess,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSolution,
    TemplateSetNewPrevHash,
)
from protocols.sv2.messages.base import Message

SRI_PUBLIC = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
POOL_SCRIPT = b"\x00\x14" + b"\x77" * 20
SPACE = 8
VALUE = 5_000_012_345
PREV = bytes(range(32))
NBITS = 0x207FFFFF


def _tx(n: int) -> Tx:
    txin = TxIn(bytes([n]) * 32 + b"\0\0\0\0", b"", 0xFFFFFFFD)
    txin.witness = [bytes([n]) * 71, b"\x02" + bytes([n]) * 32]
    return Tx(2, [txin], [TxOut(1000 * n, b"\x00\x14" + bytes([n]) * 20)], 0)


TXS = [_tx(1), _tx(2), _tx(3)]
RAW = tuple(t.serialize() for t in TXS)


def _template(template_id: int = 7, txs: list[Tx] = TXS, future: bool = True) -> NewTemplate:
    commitment = TxOut(0, witness_commitment_script(txs))
    path = tuple(merkle_branch([b"\0" * 32, *(t.txid for t in txs)], 0)) if txs else ()
    return NewTemplate(
        template_id, future, 0x20000000, 2, push_int(321), 0xFFFFFFFF, VALUE, 1,
        commitment.serialize(), 0, path,
    )  # fmt: skip


def _prev(template_id: int = 7, prev: bytes = PREV) -> TemplateSetNewPrevHash:
    return TemplateSetNewPrevHash(
        template_id, prev, 1_700_000_000, NBITS, (2**220).to_bytes(32, "little")
    )


def _token_outputs(*extra: TxOut) -> bytes:
    return serialize_output_array([TxOut(0, POOL_SCRIPT), *extra])


CHANNEL = PoolChannel(3, b"\xaa\xbb\xcc\xdd", 12, SPACE)


def test_output_array_round_trip_and_errors() -> None:
    outs = [TxOut(0, POOL_SCRIPT), TxOut(5, b"\x6a\x01\x01")]
    assert [
        (o.value, o.script_pubkey) for o in parse_output_array(serialize_output_array(outs))
    ] == [
        (0, POOL_SCRIPT),
        (5, b"\x6a\x01\x01"),
    ]
    with pytest.raises(JdJobError):
        parse_output_array(serialize_output_array(outs)[:-1])


def test_declared_coinbase_agrees_in_all_three_shapes() -> None:
    job = build_job(_template(), _prev(), RAW, parse_output_array(_token_outputs()), CHANNEL)
    downstream = bytes(range(1, SPACE + 1))
    full = CHANNEL.full_extranonce(downstream)
    assert full == b"\xaa\xbb\xcc\xdd" + bytes(4) + downstream
    # JDS view: witness serialization; the JDS finds the extranonce size from the scriptSig
    # length byte at offset 43 (version, marker/flag, input count, outpoint).
    declare = job.declare(9, b"tok")
    script_len, pos = read_compact_size(declare.coinbase_tx_prefix, 43)
    assert script_len - (len(declare.coinbase_tx_prefix) - pos) == len(full)
    coinbase = Tx.from_bytes(declare.coinbase_tx_prefix + full + declare.coinbase_tx_suffix)
    script_sig = coinbase.inputs[0].script_sig
    assert script_sig.startswith(push_int(321)) and script_sig.endswith(bytes([len(full)]) + full)
    assert coinbase.inputs[0].witness == [b"\0" * 32]
    assert (coinbase.outputs[0].value, coinbase.outputs[0].script_pubkey) == (VALUE, POOL_SCRIPT)
    assert coinbase.outputs[1].script_pubkey == witness_commitment_script(TXS)
    assert declare.wtxid_list == tuple(t.wtxid for t in TXS)
    # Pool view: it rebuilds the coinbase from SetCustomMiningJob's fields around `full`.
    custom = job.custom_job(3, 4, b"new")
    rebuilt = Tx(
        custom.coinbase_tx_version,
        [TxIn(NULL_OUTPOINT, custom.coinbase_prefix + full, custom.coinbase_tx_input_n_sequence)],
        parse_output_array(custom.coinbase_tx_outputs),
        custom.coinbase_tx_locktime,
    )
    assert rebuilt.txid == coinbase.txid
    assert (custom.prev_hash, custom.nbits, custom.merkle_path) == (PREV, NBITS, job.merkle_path)
    # Downstream view: the work's coinbase for our space is the same transaction.
    work = job.work(11, CHANNEL)
    assert work.coinbase(downstream) == coinbase.serialize_without_witness()
    root, _ = merkle_root([coinbase.txid, *(t.txid for t in TXS)])
    assert work.merkle_root(downstream) == root
    # Block: SubmitSolution carries the witness coinbase of the template; PushSolution the
    # full extranonce.
    submit, push = job.solution(full, 0x20000004, 1_700_000_100, 42)
    assert submit.template_id == 7 and submit.coinbase_tx == coinbase.serialize()
    assert root_from_branch(Tx.from_bytes(submit.coinbase_tx).txid, list(job.merkle_path)) == root
    assert (push.extranonce, push.prev_hash, push.nonce, push.ntime) == (
        full, PREV, 42, 1_700_000_100
    )  # fmt: skip


def test_payout_takes_what_the_jds_outputs_leave() -> None:
    extra = TxOut(1_000, b"\x6a\x01\x02")
    job = build_job(_template(), _prev(), RAW, parse_output_array(_token_outputs(extra)), CHANNEL)
    assert [o.value for o in job.outputs] == [VALUE - 1_000, 1_000, 0]
    with pytest.raises(JdJobError, match="ask"):
        build_job(
            _template(), _prev(), RAW, [TxOut(0, POOL_SCRIPT), TxOut(VALUE + 1, b"")], CHANNEL
        )
    with pytest.raises(JdJobError, match="no pool payout"):
        build_job(_template(), _prev(), RAW, [], CHANNEL)


def test_job_rules_are_checked() -> None:
    outs = parse_output_array(_token_outputs())
    with pytest.raises(JdJobError, match="merkle path"):
        build_job(_template(), _prev(), RAW[:2], outs, CHANNEL)
    with pytest.raises(
        JdJobError,
        match=f"offers {SPACE - 1} extranonce bytes per channel, this module needs {SPACE}",
    ):
        build_job(_template(), _prev(), RAW, outs, PoolChannel(3, b"\1" * 4, SPACE - 1, SPACE))
    with pytest.raises(JdJobError, match="above 100"):
        build_job(_template(), _prev(), RAW, outs, CHANNEL, tag=b"x" * 80)
    job = build_job(_template(txs=[]), _prev(), (), outs, CHANNEL)
    assert job.merkle_path == () and job.wtxids == ()
    with pytest.raises(JdJobError, match="positions"):
        job.missing((0,))


# the session ------------------------------------------------------------------------------


def _take(session: JdSession) -> list[tuple[Peer, Message]]:
    out, session.outbox = session.outbox, []
    for _, message in out:  # everything we queue must survive the wire
        payload = message.encode_payload()
        assert type(message).decode_payload(payload).encode_payload() == payload
    return out


def _only(out: list[tuple[Peer, Message]], peer: Peer, kind: type) -> Message:
    matching = [m for p, m in out if p is peer and isinstance(m, kind)]
    assert len(matching) == 1, out
    return matching[0]


def _session() -> JdSession:
    ids = iter(range(100, 200))
    return JdSession(SPACE, "bcrt1qminer", lambda: next(ids), timeout=5.0, connect_timeout=10.0)


def _set_up(s: JdSession) -> None:
    s.on_connected(Peer.POOL, 0.0)
    setup = _only(_take(s), Peer.POOL, SetupConnection)
    assert setup.protocol == Protocol.MINING
    assert setup.flags & MiningClientFlags.REQUIRES_WORK_SELECTION
    s.on_message(Peer.POOL, SetupConnectionSuccess(2, 0), 0.1)
    opened = _only(_take(s), Peer.POOL, OpenExtendedMiningChannel)
    assert opened.min_extranonce_size == SPACE
    s.on_message(
        Peer.POOL,
        OpenExtendedMiningChannelSuccess(
            opened.request_id, 3, (2**240).to_bytes(32, "little"), 12, b"\xaa\xbb\xcc\xdd", 0
        ),
        0.2,
    )
    s.on_connected(Peer.JDS, 0.2)
    jd_setup = _only(_take(s), Peer.JDS, SetupConnection)
    assert (jd_setup.protocol, jd_setup.flags) == (Protocol.JOB_DECLARATION, DECLARE_TX_DATA)
    s.on_connected(Peer.TP, 0.3)
    assert _take(s) == []  # no constraints before the pool's outputs are known
    s.on_message(Peer.JDS, SetupConnectionSuccess(2, 0), 0.3)
    asks = [m for _, m in _take(s) if isinstance(m, AllocateMiningJobToken)]
    assert [a.user_identifier for a in asks] == ["bcrt1qminer"] * 2
    for n, ask in enumerate(asks):
        s.on_message(
            Peer.JDS,
            AllocateMiningJobTokenSuccess(ask.request_id, b"tok%d" % n, _token_outputs()),
            0.4,
        )
    constraints = _only(_take(s), Peer.TP, CoinbaseOutputConstraints)
    assert constraints.coinbase_output_max_additional_size == len(TxOut(0, POOL_SCRIPT).serialize())
    assert s.setup_done


def _declare(s: JdSession, template_id: int = 7, prev: bytes = PREV, now: float = 1.0):
    s.on_message(Peer.TP, _template(template_id), now)
    s.on_message(Peer.TP, _prev(template_id, prev), now)
    request = _only(_take(s), Peer.TP, RequestTransactionData)
    assert request.template_id == template_id
    s.on_message(Peer.TP, RequestTransactionDataSuccess(template_id, b"", RAW), now)
    out = _take(s)
    declare = _only(out, Peer.JDS, DeclareMiningJob)
    assert _only(out, Peer.JDS, AllocateMiningJobToken)  # the spent token is replaced
    return declare


def test_full_declaration_flow_delivers_work_only_when_both_accepted() -> None:
    s = _session()
    _set_up(s)
    declare = _declare(s)
    assert declare.mining_job_token == b"tok0"
    assert declare.wtxid_list == tuple(t.wtxid for t in TXS)
    s.on_message(Peer.JDS, ProvideMissingTransactions(declare.request_id, (2, 0)), 1.1)
    provided = _only(_take(s), Peer.JDS, ProvideMissingTransactionsSuccess)
    assert provided.transaction_list == (RAW[2], RAW[0])
    s.on_message(Peer.JDS, DeclareMiningJobSuccess(declare.request_id, b"declared"), 1.2)
    custom = _only(_take(s), Peer.POOL, SetCustomMiningJob)
    assert (custom.channel_id, custom.mining_job_token) == (3, b"declared")
    assert s.ready == []
    s.on_message(Peer.POOL, SetCustomMiningJobSuccess(3, custom.request_id, 55), 1.3)
    [(work, live)] = s.ready
    assert (work.template_id, live.job_id, work.extranonce_size) == (100, 55, SPACE)
    assert work.prev_hash == PREV and work.transactions is None


def test_declare_error_and_custom_job_error_fail_the_upstream() -> None:
    s = _session()
    _set_up(s)
    declare = _declare(s)
    with pytest.raises(UpstreamError, match="JDS rejected our job: invalid-mining-job-token"):
        s.on_message(
            Peer.JDS, DeclareMiningJobError(declare.request_id, "invalid-mining-job-token", b""), 2
        )
    s = _session()
    _set_up(s)
    declare = _declare(s)
    s.on_message(Peer.JDS, DeclareMiningJobSuccess(declare.request_id, b"declared"), 1.2)
    custom = _only(_take(s), Peer.POOL, SetCustomMiningJob)
    with pytest.raises(UpstreamError, match="pool rejected our custom job: invalid-job"):
        s.on_message(Peer.POOL, SetCustomMiningJobError(3, custom.request_id, "invalid-job"), 2)


def test_timeouts_name_what_is_missing() -> None:
    s = _session()
    s.on_connected(Peer.POOL, 0.0)
    s.check(9.0)
    with pytest.raises(UpstreamError, match="no pool channel, JDS setup, template provider"):
        s.check(10.5)
    s = _session()
    _set_up(s)
    declare = _declare(s, now=20.0)
    s.check(24.0)
    with pytest.raises(UpstreamError, match="AllocateMiningJobToken unanswered"):
        s.check(25.5)  # the replacement token asked at 20.0 never came
    s = _session()
    _set_up(s)
    declare = _declare(s, now=20.0)
    s.on_message(
        Peer.JDS,
        AllocateMiningJobTokenSuccess(next(iter(s._token_requests)), b"t", _token_outputs()),
        21,
    )
    with pytest.raises(UpstreamError, match="DeclareMiningJob unanswered"):
        s.check(25.5)
    s.on_message(Peer.JDS, DeclareMiningJobSuccess(declare.request_id, b"d"), 25.6)
    s.check(26.0)
    with pytest.raises(UpstreamError, match="SetCustomMiningJob unanswered"):
        s.check(31.0)


def test_a_new_block_drops_jobs_still_being_declared() -> None:
    s = _session()
    _set_up(s)
    old = _declare(s, 7, PREV)
    s.on_message(
        Peer.JDS,
        AllocateMiningJobTokenSuccess(next(iter(s._token_requests)), b"t2", _token_outputs()),
        1,
    )
    new = _declare(s, 8, b"\x42" * 32, now=1.5)
    s.on_message(Peer.JDS, DeclareMiningJobSuccess(old.request_id, b"d-old"), 1.6)
    assert _take(s) == []  # stale: never announced to the pool
    s.on_message(Peer.JDS, DeclareMiningJobSuccess(new.request_id, b"d-new"), 1.7)
    custom = _only(_take(s), Peer.POOL, SetCustomMiningJob)
    assert custom.prev_hash == b"\x42" * 32


def _live(s: JdSession):
    declare = _declare(s)
    s.on_message(Peer.JDS, DeclareMiningJobSuccess(declare.request_id, b"declared"), 1.2)
    custom = _only(_take(s), Peer.POOL, SetCustomMiningJob)
    s.on_message(Peer.POOL, SetCustomMiningJobSuccess(3, custom.request_id, 55), 1.3)
    [(work, live)] = s.ready
    return work, live


def test_shares_go_to_the_pool_and_blocks_also_to_the_node_and_the_jds() -> None:
    s = _session()
    _set_up(s)
    work, live = _live(s)
    ext = bytes(range(SPACE))
    weak = UpstreamShare(work.template_id, ext, 0x20000000, 1_700_000_001, 9, 2**241)
    assert not s.submit_share(live, weak) and _take(s) == []  # below the pool's target
    share = UpstreamShare(work.template_id, ext, 0x20000000, 1_700_000_001, 9, 2**239)
    assert s.submit_share(live, share)
    sent = _only(_take(s), Peer.POOL, SubmitSharesExtended)
    assert (sent.channel_id, sent.job_id, sent.nonce) == (3, 55, 9)
    assert sent.extranonce == bytes(4) + ext  # padding to the pool's 12 bytes, then ours
    s.on_message(Peer.POOL, SubmitSharesError(3, sent.sequence_number, "stale-share"), 2)
    assert (s.stats.submitted, s.stats.rejected, s.stats.rejects) == (1, 1, {"stale-share": 1})
    block = UpstreamShare(work.template_id, ext, 0x20000000, 1_700_000_002, 10, 2**200)
    assert s.submit_share(live, block)
    out = _take(s)
    submit = _only(out, Peer.TP, SubmitSolution)
    push = _only(out, Peer.JDS, PushSolution)
    _only(out, Peer.POOL, SubmitSharesExtended)
    assert submit.template_id == 7 and submit.header_nonce == 10
    assert push.extranonce == b"\xaa\xbb\xcc\xdd" + bytes(4) + ext and s.blocks == 1
    coinbase = Tx.from_bytes(submit.coinbase_tx)
    assert coinbase.txid == Tx.from_bytes(work.coinbase(ext)).txid


# configuration ----------------------------------------------------------------------------


def test_jd_pool_url() -> None:
    spec = parse_upstream(
        f"stratum2+tcp://pool.example:3336/{SRI_PUBLIC}?jds=jds.example:3337", user="bc1qme"
    )
    assert (spec.kind, spec.jds_host, spec.jds_port, spec.jds_key) == (
        "jd", "jds.example", 3337, None
    )  # fmt: skip
    with pytest.raises(UpstreamConfigError, match="node_tp"):
        build_upstream(spec, SPACE)
    up = build_upstream(spec, SPACE, node_tp=("127.0.0.1", 18447, None))
    assert isinstance(up, JdUpstream) and up.jds_authority == up.authority is not None
    assert up.config.user_identity == "bc1qme"
    for bad, why in (
        ("?jds=jds.example", "host:port"),
        ("?jds=jds.example:0", "host:port"),
        ("?jdss=x:1", "unknown or repeated"),
        ("?jds=a:1&jds=b:2", "unknown or repeated"),
        ("?jds=a:1&jds_key=nope", "bad authority key"),
    ):
        with pytest.raises(UpstreamConfigError, match=why):
            parse_upstream(f"stratum2+tcp://pool.example:3336/{SRI_PUBLIC}{bad}")


def test_config_accepts_a_jd_pool_and_explains_a_bad_one(tmp_path) -> None:
    address = encode_segwit_address("bcrt", 0, b"\x11" * 20)
    pool = f"stratum2+tcp://127.0.0.1:3336/{SRI_PUBLIC}"
    path = tmp_path / "blvm.toml"
    path.write_text(
        f'[modules.stratum-v2]\nchain = "regtest"\npayout_address = "{address}"\n'
        f'pools = ["{pool}?jds=127.0.0.1:3337", "solo"]\n'
    )
    cfg = load_stratum_config(path)
    assert [(p.kind, p.jds_port, p.user) for p in cfg.pools] == [
        ("jd", 3337, address), ("solo", 0, "")
    ]  # fmt: skip
    path.write_text(
        f'[modules.stratum-v2]\nchain = "regtest"\npayout_address = "{address}"\n'
        f'pools = ["{pool}?jds=127.0.0.1"]\n'
    )
    with pytest.raises(ConfigError) as info:
        load_stratum_config(path)
    [problem] = info.value.problems
    assert f"{path}:4: modules.stratum-v2.pools:" in problem and "jds must be host:port" in problem

"""Any share a peer can encode is answered with a result, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.stratum_v2.errors import ShareError
from appliance.stratum_v2.jobs import ChannelKind
from appliance.stratum_v2.shares import validate_share
from protocols.sv2.messages import SubmitSharesExtended, SubmitSharesStandard
from tests.unit.stratum_v2.sv2srv_vectors import channel, work

U32 = st.integers(0, 0xFFFFFFFF)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(list(ChannelKind)),
    extended=st.booleans(),
    job_id=st.one_of(st.just(1), U32),
    nonce=U32,
    ntime=U32,
    version=U32,
    extranonce=st.binary(max_size=32),
)
def test_validate_share_total(kind, extended, job_id, nonce, ntime, version, extranonce) -> None:
    ch = channel(kind, 1 << 255)
    ch.jobs.new_job(work())
    if extended:
        share = SubmitSharesExtended(7, 1, job_id, nonce, ntime, version, extranonce)
    else:
        share = SubmitSharesStandard(7, 1, job_id, nonce, ntime, version)
    result = validate_share(ch, share)
    assert result.error is None or isinstance(result.error, ShareError)
    if result.accepted:
        assert result.hash_value <= ch.target

"""Authority/static keys on disk: generated once, 0600, reloaded, certificate verifies."""

from __future__ import annotations

import stat

import pytest

from appliance.stratum_v2.errors import KeyFileError
from appliance.stratum_v2.keys import load_or_create_keys
from protocols.sv2 import keys as sv2keys
from protocols.sv2 import secp


def test_keys_are_created_private_and_stable(tmp_path) -> None:
    first = load_or_create_keys(tmp_path / "k", now=1_000_000)
    for name in ("authority.key", "static.key"):
        assert stat.S_IMODE((tmp_path / "k" / name).stat().st_mode) == 0o600
    assert (tmp_path / "k" / "authority.pub").read_text().strip() == first.authority_public
    again = load_or_create_keys(tmp_path / "k", now=2_000_000)
    assert (again.authority_secret, again.static_secret) == (
        first.authority_secret,
        first.static_secret,
    )
    authority = sv2keys.decode_authority_public_key(again.authority_public)
    again.certificate.verify(authority, secp.xonly_from_secret(again.static_secret), 2_000_000)
    assert not list((tmp_path / "k").glob(".*"))  # no temp files left behind


def test_corrupt_key_file_says_what_to_do(tmp_path) -> None:
    (tmp_path / "authority.key").write_text("not-base58!")
    with pytest.raises(KeyFileError, match="delete it"):
        load_or_create_keys(tmp_path, now=1)

"""Template provider keys: created once (0600, atomic), reused, and proving the authority."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from node.mining.tp_keys import KEY_FILE, TpKeyError, load_or_create_keys
from protocols.sv2 import keys, secp
from protocols.sv2.errors import CertificateError


def test_tp_keys_created_private_and_reused(tmp_path: Path) -> None:
    rng = random.Random(7).randbytes
    created = load_or_create_keys(tmp_path / "d", rng)
    path = tmp_path / "d" / KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path / "d") == [KEY_FILE]  # the temp file was renamed, not left
    assert load_or_create_keys(tmp_path / "d") == created
    body = json.loads(path.read_text())
    assert keys.decode_authority_public_key(body["authority_public_key"]) == (
        created.authority_public
    )
    assert created.authority_public_text == body["authority_public_key"]
    assert created.authority_public_text.startswith("9")  # SRI's base58 form (version 1)


def test_tp_certificate_verifies_against_the_authority_only(tmp_path: Path) -> None:
    k = load_or_create_keys(tmp_path)
    cert = k.certificate(1_800_000_000, 3600, os.urandom)
    static = secp.xonly_from_secret(k.static_secret)
    cert.verify(k.authority_public, static, 1_800_000_000)
    cert.verify(k.authority_public, static, 1_800_000_000 - 30)  # a client clock behind
    with pytest.raises(CertificateError):
        cert.verify(k.authority_public, static, 1_800_000_000 + 3600 + 60)
    other = load_or_create_keys(tmp_path / "other")
    with pytest.raises(CertificateError):
        cert.verify(other.authority_public, static, 1_800_000_000)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        '{"authority_secret_key": "x"}',
        '{"authority_secret_key": "1111", "static_secret_key": "1111"}',
    ],
)
def test_tp_unusable_key_file_says_what_to_do(tmp_path: Path, text: str) -> None:
    (tmp_path / KEY_FILE).write_text(text)
    with pytest.raises(TpKeyError, match="move the file away"):
        load_or_create_keys(tmp_path)
    assert (tmp_path / KEY_FILE).read_text() == text  # never overwritten

"""The identity file in usepod-agent's format (src/identity.rs): read, made, kept 0600."""

from __future__ import annotations

import base64
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from modelport.agent.identity import (
    FOOTER,
    HEADER,
    IdentityError,
    expand_key_path,
    load_or_create,
)

SEED = bytes(range(32))
# What chrono's `to_rfc3339()` writes for a time with nanoseconds (identity.rs serialize).
CREATED = "2026-03-01T12:34:56.123456789+00:00"


def public_of(seed: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def usepod_file(seed: bytes = SEED, *, public: bytes | None = None, extra: str = "") -> str:
    """A file as identity.rs `serialize` writes it."""
    b64 = base64.b64encode
    return (
        f"{HEADER}\nversion: 1\ncreated: {CREATED}\n"
        f"secret: {b64(seed).decode()}\npublic: {b64(public or public_of(seed)).decode()}\n"
        f"{extra}{FOOTER}\n"
    )


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_reads_usepod_file_and_signs_with_its_key(tmp_path: Path) -> None:
    path = write(tmp_path / "identity.key", usepod_file(extra="provider_id: prov-123\n"))
    identity = load_or_create(path)
    expected_public = public_of(SEED)
    assert identity.public_key_b64 == base64.b64encode(expected_public).decode()
    assert identity.provider_id == "prov-123"
    assert identity.created == datetime(2026, 3, 1, 12, 34, 56, 123456, tzinfo=UTC)
    nonce = os.urandom(32)
    signature = base64.b64decode(identity.sign_b64(nonce), validate=True)
    Ed25519PublicKey.from_public_bytes(expected_public).verify(signature, nonce)
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(expected_public).verify(signature, nonce + b"x")
    assert "secret" not in repr(identity) and base64.b64encode(SEED).decode() not in repr(identity)


def test_mismatched_public_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "identity.key", usepod_file(public=public_of(bytes(32))))
    with pytest.raises(IdentityError) as caught:
        load_or_create(path)
    assert str(caught.value) == (
        f"identity {path}: the public key does not match the secret key; refusing to load"
    )


def test_warns_when_others_can_read_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "identity.key", usepod_file(), mode=0o644)
    with caplog.at_level(logging.WARNING, logger="modelport.agent"):
        load_or_create(path)
    assert f"identity file {path} is accessible to other users (mode 644)" in caplog.text
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="modelport.agent"):
        load_or_create(path)
    assert caplog.text == ""


def test_created_on_first_use_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "identity.key"
    identity = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert identity.provider_id is None
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == HEADER and lines[-1] == FOOTER and text.endswith("\n")
    assert lines[1] == "version: 1"
    assert lines[2].startswith("created: ")
    assert datetime.fromisoformat(lines[2].removeprefix("created: ")).tzinfo is not None
    assert [line.split(":")[0] for line in lines[1:-1]] == [
        "version",
        "created",
        "secret",
        "public",
    ]
    seed = base64.b64decode(lines[3].removeprefix("secret: "), validate=True)
    assert len(seed) == 32
    assert lines[4] == f"public: {base64.b64encode(public_of(seed)).decode()}"
    assert identity.public_key_b64 == lines[4].removeprefix("public: ")
    # The same key the next time.
    again = load_or_create(path)
    assert again.public_key_b64 == identity.public_key_b64
    assert again.created == identity.created


def test_set_provider_id_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "identity.key", usepod_file(), mode=0o640)
    identity = load_or_create(path)
    identity.set_provider_id("prov_0123456789abcdef01234567")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Exactly what identity.rs writes: the same lines, provider_id before the footer, and
    # the creation time as it was (usepod-agent's nanoseconds kept).
    assert path.read_text() == usepod_file(extra="provider_id: prov_0123456789abcdef01234567\n")
    assert [p.name for p in tmp_path.iterdir()] == ["identity.key"]  # no temporary left
    again = load_or_create(path)
    assert again.provider_id == "prov_0123456789abcdef01234567"
    assert again.public_key_b64 == identity.public_key_b64
    again.set_provider_id("prov-2")
    assert load_or_create(path).provider_id == "prov-2"


def test_set_provider_id_refuses_a_broken_line(tmp_path: Path) -> None:
    identity = load_or_create(tmp_path / "identity.key")
    with pytest.raises(IdentityError):
        identity.set_provider_id("a\nsecret: x")
    assert load_or_create(tmp_path / "identity.key").provider_id is None


def test_unknown_lines_are_skipped_and_blank_lines_allowed(tmp_path: Path) -> None:
    text = "leading junk\n" + usepod_file(extra="\nfuture_field: 1\n") + "trailing\n"
    identity = load_or_create(write(tmp_path / "identity.key", text))
    assert identity.public_key_b64 == base64.b64encode(public_of(SEED)).decode()


GOOD = usepod_file()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", f"missing header {HEADER}"),
        (GOOD.replace(FOOTER, ""), f"missing footer {FOOTER}"),
        (f"{FOOTER}\n{GOOD.replace(FOOTER, '')}", "malformed identity file: footer before header"),
        (GOOD.replace("version: 1\n", ""), "missing `version`"),
        (GOOD.replace("version: 1", "version: 2"), "unsupported identity format version 2"),
        (GOOD.replace("version: 1", "version: one"), "`version` is not a number: 'one'"),
        (GOOD.replace(f"created: {CREATED}\n", ""), "missing `created`"),
        (GOOD.replace(CREATED, "yesterday"), "`created` is not an RFC 3339 time: 'yesterday'"),
        (GOOD.replace(CREATED, "2026-03-01T12:34:56"), "`created` is not an RFC 3339 time"),
        (GOOD.replace("secret: ", "secret: !"), "`secret` is not standard base64"),
        (
            GOOD.replace(base64.b64encode(SEED).decode(), base64.b64encode(SEED[:16]).decode()),
            "`secret` must decode to 32 bytes, got 16",
        ),
        (GOOD.replace("public: ", "pub "), "malformed line 5 (expected `key: value`)"),
        (GOOD.replace("public: ", "public_key: "), "missing `public`"),
        (GOOD.replace("secret: ", "secret "), "malformed line 4 (expected `key: value`)"),
    ],
)
def test_malformed_files_say_what_is_wrong(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "identity.key", text)
    with pytest.raises(IdentityError) as caught:
        load_or_create(path)
    assert str(caught.value).startswith(f"identity {path}: {problem}")
    assert base64.b64encode(SEED).decode() not in str(caught.value)


def test_expand_key_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert (
        expand_key_path("~/.usepod-agent/identity.key") == tmp_path / ".usepod-agent/identity.key"
    )
    assert expand_key_path("~") == tmp_path
    assert expand_key_path("/etc/agent.key") == Path("/etc/agent.key")
    assert expand_key_path("keys/agent.key") == Path("keys/agent.key")
    assert expand_key_path("~other/key") == Path("~other/key")  # as config.rs: not expanded

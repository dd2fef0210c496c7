"""Who may join the hub: config keys, the agents file (add-agent, revoke), enrollment codes
single-use and reusable with expiry, and the file shared by a gateway and the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from modelport.config import EnrollmentCode, HubConfig
from modelport.hub.access import (
    Access,
    AccessDenied,
    AgentsFile,
    add_agent,
    provider_id_for,
    revoke_agent,
)


def key(n: int) -> str:
    """A well-formed public key: standard base64 of 32 bytes (usepod-agent's identity.rs)."""
    return base64.b64encode(bytes([n]) * 32).decode()


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
LATER = "2027-01-15T09:00:00Z"
EARLIER = "2027-01-15T07:00:00Z"


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def denied(access: Access, pubkey: str, code: str | None = None) -> str:
    with pytest.raises(AccessDenied) as caught:
        access.admit(pubkey, code)
    return caught.value.reason


def test_provider_id_is_stable_and_derived_from_the_raw_key() -> None:
    raw = bytes([7]) * 32
    expected = "prov_" + hashlib.sha256(raw).hexdigest()[:24]
    assert provider_id_for(key(7)) == expected == provider_id_for(key(7))
    assert provider_id_for(key(8)) != expected
    with pytest.raises(ValueError, match="32-byte"):
        provider_id_for(base64.b64encode(b"short").decode())


def test_config_keys_are_admitted_and_others_are_not(tmp_path: Path) -> None:
    access = Access(HubConfig(agent_keys=(key(1),)), tmp_path / "agents.json")
    assert access.admit(key(1), None) == provider_id_for(key(1))
    assert denied(access, key(2)) == "unknown key"
    assert denied(access, "not base64!").startswith("invalid key: expected a public key")
    assert denied(access, base64.b64encode(b"x" * 31).decode()) == (
        "invalid key: expected a 32-byte Ed25519 public key, got 31 bytes"
    )


def test_add_agent_admits_and_revoke_takes_effect_without_a_new_access(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "agents.json"
    access = Access(HubConfig(), path)  # the gateway's, made before the file exists
    assert denied(access, key(3)) == "unknown key"
    record = add_agent(path, key(3), name="gpu-box")
    assert (record.name, record.provider_id) == ("gpu-box", provider_id_for(key(3)))
    assert access.admit(key(3), None) == provider_id_for(key(3))
    assert not access.revoked(key(3))
    revoke_agent(path, provider_id_for(key(3)))  # by provider id
    assert access.revoked(key(3))  # what the hub asks on each heartbeat
    assert denied(access, key(3)) == "revoked key"
    add_agent(path, key(3))  # the operator admits it again
    assert access.admit(key(3), None) == provider_id_for(key(3))
    assert access.agents()[0].name == "gpu-box"  # a re-add keeps the name


def test_a_config_key_can_be_revoked_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    access = Access(HubConfig(agent_keys=(key(4),)), path)
    assert access.admit(key(4), None)
    record = revoke_agent(path, key(4), config_keys=(key(4),))
    assert record.via == "config" and record.revoked_at is not None
    assert denied(access, key(4)) == "revoked key"
    with pytest.raises(LookupError, match="no agent with public key or provider id"):
        revoke_agent(path, key(5), config_keys=(key(4),))


def test_single_use_code_enrolls_one_key_which_stays_admitted(tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    config = HubConfig(enrollment_codes=(EnrollmentCode(code="team-123", expires_at=LATER),))
    access = Access(config, path, clock=Clock())
    assert denied(access, key(1), "wrong") == "enrollment code unknown"
    assert denied(access, key(1)) == "unknown key"
    assert access.admit(key(1), "team-123") == provider_id_for(key(1))
    # Reconnecting without the code (the agent now has a provider_id): still admitted.
    assert access.admit(key(1), None) == provider_id_for(key(1))
    assert access.admit(key(1), "team-123") == provider_id_for(key(1))
    assert denied(access, key(2), "team-123") == "enrollment code used"
    # A gateway restarted later reads the same file.
    again = Access(config, path, clock=Clock())
    assert again.admit(key(1), None) == provider_id_for(key(1))
    assert denied(again, key(2), "team-123") == "enrollment code used"
    text = path.read_text()
    assert "team-123" not in text  # only a digest of the code is kept
    entry = json.loads(text)["agents"][0]
    assert entry["via"] == "enrollment code" and entry["pubkey"] == key(1)


def test_codes_expire_and_reusable_ones_admit_many_until_then(tmp_path: Path) -> None:
    clock = Clock()
    config = HubConfig(
        enrollment_codes=(
            EnrollmentCode(code="old", expires_at=EARLIER),
            EnrollmentCode(code="lab", reusable=True, expires_at=LATER),
        )
    )
    access = Access(config, tmp_path / "agents.json", clock=clock)
    assert denied(access, key(1), "old") == "enrollment code expired"
    assert access.admit(key(1), "lab") and access.admit(key(2), "lab")
    clock.t = NOW + 2 * 3600  # past LATER
    assert denied(access, key(3), "lab") == "enrollment code expired"
    assert access.admit(key(1), None) and access.admit(key(2), None)  # enrolled stay


def test_a_code_does_not_undo_a_revocation(tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    config = HubConfig(enrollment_codes=(EnrollmentCode(code="lab", reusable=True),))
    access = Access(config, path)
    access.admit(key(1), "lab")
    revoke_agent(path, key(1))
    assert denied(access, key(1), "lab") == "revoked key"


def test_the_file_is_private_and_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    add_agent(path, key(1))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry.pubkey for entry in AgentsFile(path).read().agents] == [key(1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agents.json", "agents.json.lock"]


def test_a_corrupt_file_keeps_what_the_gateway_knew(tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    add_agent(path, key(1))
    access = Access(HubConfig(), path)
    assert access.admit(key(1), None)
    path.write_text("{not json")
    assert access.admit(key(1), None)  # logged; the agents read before still count
    with pytest.raises(ValueError, match="is not valid"):
        AgentsFile(path).read()


def _add_many(path: str, first: int) -> None:
    for n in range(first, first + 25):
        add_agent(Path(path), key(n))


def test_writers_in_two_processes_lose_nothing(tmp_path: Path) -> None:
    """The CLI and a gateway enrolling at once: every change lands (the lock)."""
    path = tmp_path / "agents.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(str(path), s)) for s in (10, 100)]
    for worker in workers:
        worker.start()
    _add_many(str(path), 200)
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    found = {entry.pubkey for entry in AgentsFile(path).read().agents}
    assert found == {key(n) for s in (10, 100, 200) for n in range(s, s + 25)}
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".agents.json.")]


def test_an_enrollment_the_hub_cannot_record_is_refused(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    config = HubConfig(enrollment_codes=(EnrollmentCode(code="lab", reusable=True),))
    access = Access(config, blocked / "agents.json")  # its directory cannot be made
    assert denied(access, key(1), "lab") == "enrollment failed: the hub cannot record the agent"


def test_an_agents_file_that_cannot_be_read_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    looped = tmp_path / "agents.json"
    looped.symlink_to(looped)  # stat fails (too many levels of links), even for root
    access = Access(HubConfig(agent_keys=(key(1),)), looped)
    for _ in range(5):  # the hub asks per agent, up to once a second each
        assert access.admit(key(1), None) == provider_id_for(key(1))
        assert not access.revoked(key(1))
    assert caplog.text.count("cannot stat the agents file") == 1

"""`modelport hub add-agent / revoke / agents`, and the [hub] table in `config check`: its
rules (one error naming the key) and its rendering (never a code)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from modelport.config import ConfigError, HubConfig, parse_config, render_check
from modelport.gateway.server import Gateway
from modelport.hub.access import Access, provider_id_for
from modelport.hub.routes import add_hub_routes
from tests.gateway_harness import make_config
from tests.hub.helpers import StandInHub, key, view


async def modelport(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelport.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "modelport.toml"
    # A relative agents_file lives next to the config file, wherever the command runs.
    path.write_text(
        f'[hub]\nenabled = true\nagent_keys = ["{key(9)}"]\nagents_file = "agents.json"\n'
    )
    return path


async def test_add_list_and_revoke(config: Path) -> None:
    agents_file = config.parent / "agents.json"
    code, out, err = await modelport("hub", "add-agent", key(1), "--name", "gpu", "-c", str(config))
    assert code == 0, err
    assert out.splitlines() == [
        f"admitted {provider_id_for(key(1))} (gpu)",
        f"agents file: {agents_file}",
    ]
    assert Access(HubConfig(), agents_file).admit(key(1), None) == provider_id_for(key(1))

    code, out, err = await modelport("hub", "agents", "-c", str(config))
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["name", "provider", "id", "public", "key", "added", "revoked"]
    assert row.split()[:3] == ["gpu", provider_id_for(key(1)), key(1)] and row.endswith("-")

    code, out, err = await modelport("hub", "revoke", provider_id_for(key(1)), "-c", str(config))
    assert code == 0 and out.startswith(f"revoked {provider_id_for(key(1))} at 20"), err
    code, out, _ = await modelport("hub", "agents", "--json", "-c", str(config))
    (entry,) = json.loads(out)
    assert entry["revoked_at"] is not None and entry["name"] == "gpu"
    # A key from the config file is revoked through the agents file too.
    code, _, err = await modelport("hub", "revoke", key(9), "-c", str(config))
    assert code == 0, err
    assert Access(HubConfig(agent_keys=(key(9),)), agents_file).revoked(key(9))


async def test_bad_input_exits_2_saying_why(config: Path) -> None:
    code, _, err = await modelport("hub", "add-agent", "bm90IGEga2V5", "-c", str(config))
    assert code == 2
    assert "not an agent key: expected a 32-byte Ed25519 public key, got 9 bytes" in err
    code, _, err = await modelport("hub", "revoke", "prov_nobody", "-c", str(config))
    assert code == 2 and "no agent with public key or provider id 'prov_nobody'" in err
    code, out, _ = await modelport("hub", "agents", "-c", str(config))
    assert code == 0 and out.startswith("no agents in ")


async def test_agents_from_a_running_gateway(config: Path) -> None:
    gw = Gateway(make_config(), env={"MODELPORT_API_KEY": "sk-ops"})
    add_hub_routes(gw.app, StandInHub([view(1, {"llama3": (1, 2)})]), None)
    url = await gw.start()
    try:
        code, out, err = await modelport(
            "hub", "agents", "--url", url, env={"MODELPORT_API_KEY": "sk-ops"}
        )
        assert code == 0, err
        header, row = out.splitlines()
        assert header.split()[:2] == ["provider", "id"]
        assert row.split() == [
            provider_id_for(key(1)),
            "10.0.0.1",
            "ready",
            "4s",
            "0",
            "llama3",
            "0",
            "0.000000",
        ]
        code, _, err = await modelport("hub", "agents", "--url", url, env={"MODELPORT_API_KEY": ""})
        assert code == 1 and "answered 401" in err
    finally:
        await gw.stop(grace_s=0)


@pytest.mark.parametrize(
    ("toml", "key_at", "words"),
    [
        ('agent_keys = ["abc"]', "hub.agent_keys[0]", "standard base64"),
        (
            f'agent_keys = ["{key(1)}", "{key(1)}"]',
            "hub.agent_keys[1]",
            "duplicate key (also hub.agent_keys[0])",
        ),
        ('enrollment_codes = [{code = " "}]', "hub.enrollment_codes[0].code", "expected a code"),
        (
            'enrollment_codes = [{code = "a"}, {code = "a"}]',
            "hub.enrollment_codes[1].code",
            "the same code as hub.enrollment_codes[0]",
        ),
        (
            'enrollment_codes = [{code = "a", expires_at = "2027-01-15 08:00"}]',
            "hub.enrollment_codes[0].expires_at",
            "expected an RFC 3339 time",
        ),
        (
            'enrollment_codes = [{code = "a", expires_at = "2027-01-15T08:00:00"}]',
            "hub.enrollment_codes[0].expires_at",
            "has no UTC offset",
        ),
        ('policy = "cheapest"', "hub.policy", "expected one of local-first, price"),
        ("max_frame_kb = 0", "hub.max_frame_kb", "expected an integer >= 1"),
        ("max_frames_per_s = 0", "hub.max_frames_per_s", "expected an integer >= 1"),
        ("auth_timeout_s = 0", "hub.auth_timeout_s", "expected a number > 0"),
        ("drain_timeout_s = -1", "hub.drain_timeout_s", "expected a number > 0"),
        ("heartbeat_misses = 0", "hub.heartbeat_misses", "expected an integer >= 1"),
        ('agents_file = "  "', "hub.agents_file", "got blanks"),
    ],
)
def test_hub_rules(toml: str, key_at: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[hub]\n{toml}\n")
    assert caught.value.key == key_at and words in caught.value.problem
    assert "SECRET" not in str(caught.value)


def test_a_code_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[hub]\nenrollment_codes = [{code = "SECRET"}, {code = "SECRET"}]\n')
    assert "SECRET" not in str(caught.value)


def test_config_check_renders_the_hub_table(tmp_path: Path) -> None:
    config = parse_config(
        "[hub]\nenabled = true\n"
        f'agent_keys = ["{key(1)}"]\npolicy = "price"\nagents_file = "{tmp_path / "a.json"}"\n'
        'enrollment_codes = [{code = "SECRET-1"}, '
        '{code = "SECRET-2", reusable = true, expires_at = "2027-01-15T08:00:00Z"}]\n'
    )
    text = render_check(config, None, {})
    assert text.endswith(
        "hub: on, agents join at ws://127.0.0.1:7878/provider/connect\n"
        "  policy: price (the cheapest advertised price first)\n"
        "  agent keys in config: 1\n"
        "  enrollment codes: single-use, no expiry; reusable until 2027-01-15T08:00:00Z\n"
        f"  agents file: {tmp_path / 'a.json'} (not written yet)\n"
        "  limits: 1024 KB a frame, 2000 frames/s an agent, auth within 10 s, drain 30 s, "
        "not ready after 2 missed heartbeats\n"
    )
    assert "SECRET" not in text


def test_config_check_warns_when_no_agent_may_join(tmp_path: Path) -> None:
    agents = tmp_path / "agents.json"
    config = parse_config(f'[hub]\nenabled = true\nagents_file = "{agents}"\n')
    assert render_check(config, None, {}).endswith(
        "  warning: hub is enabled but no agent may join: no agent_keys, no enrollment_codes "
        "and no agents file yet (`modelport hub add-agent PUBKEY` writes one)\n"
    )
    agents.write_text('{"agents": []}')
    assert "warning" not in render_check(config, None, {})
    assert "hub:" not in render_check(parse_config(""), None, {})  # no [hub]: said nothing


async def test_a_password_in_the_url_is_not_shown_when_the_gateway_cannot_be_read() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _out, err = await modelport(
        "hub", "agents", "--url", f"http://ops:s3cret@127.0.0.1:{port}"
    )
    assert code != 0
    assert "cannot read the agents of" in err and "s3cret" not in err

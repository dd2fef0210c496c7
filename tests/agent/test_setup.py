"""`agent setup`'s pairing (usepod-agent's setup.rs) against the pairing fake and fake engines."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from modelport.agent.config import ModelPrice, load_agent_config
from modelport.agent.identity import load_or_create
from modelport.agent.setup import (
    AGENT_VERSION,
    DetectedEngine,
    Paired,
    SetupError,
    coordinator_endpoints,
    pair_page,
    render_config,
    run_setup,
)
from tests.fakes import FakeEngine
from tests.fakes.pairing import FakePairing

MODEL_CONFIG = [
    {
        "model_id": "llama3:8b",
        "input_per_1m": 200_000,
        "output_per_1m": 400_000,
        "max_concurrent": 6,
    },
    {"model_id": "qwen3:4b"},  # setup.rs's defaults: prices 0, max_concurrent 4
]


async def wait_for(predicate: Callable[[], object]) -> None:
    """Until `predicate()` holds, for at most 5 s."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out waiting")


async def test_pairs_and_writes_agent_toml(tmp_path: Path) -> None:
    said: list[str] = []
    async with (
        FakePairing(provider_id="prov_abc123", model_config=MODEL_CONFIG) as pairing,
        FakeEngine("ollama", models=["llama3:8b", "qwen3:4b"]) as engine,
    ):
        setup = asyncio.create_task(
            run_setup(
                coordinator=pairing.url,
                config_path=tmp_path / "conf" / "agent.toml",
                identity_path=tmp_path / "keys" / "identity.key",
                scan=False,
                extra_urls=[engine.url],
                poll_interval_s=0.05,
                say=said.append,
            )
        )
        # The operator reads the code off the screen and enters it on the dashboard.
        await wait_for(lambda: pairing.pair_codes and len(pairing.polls) >= 3)
        (code,) = pairing.pair_codes
        assert f"  2. Code:  {code}" in said
        assert f"  1. Visit  {pairing.url}/host/pair" in said
        pairing.claim(code)
        result = await asyncio.wait_for(setup, 5)

    identity = load_or_create(tmp_path / "keys" / "identity.key")
    assert pairing.issues == [{"agent_pubkey": identity.public_key_b64}]
    capabilities = {
        "backends": [{"kind": "ollama", "url": engine.url, "models": ["llama3:8b", "qwen3:4b"]}],
        "agent_version": AGENT_VERSION,
    }
    assert {p["poll_token"] for p in pairing.polls} == {pairing.polls[0]["poll_token"]}
    assert all(p["capabilities"] == capabilities for p in pairing.polls)
    gaps = [b - a for a, b in zip(pairing.poll_times, pairing.poll_times[1:], strict=False)]
    assert min(gaps) >= 0.04  # polls are spaced by the interval, not hammered
    # The provider id is kept in the identity file, still owner-only.
    assert identity.provider_id == "prov_abc123"
    assert result.identity.provider_id == "prov_abc123"
    assert stat.S_IMODE(identity.path.stat().st_mode) == 0o600
    # agent.toml as setup.rs writes it, loadable (ws:// needs --allow-insecure).
    text = (tmp_path / "conf" / "agent.toml").read_text()
    assert pairing.host_token not in text
    assert '# host_token     = "ht_live_…stuv"  (paired)' in text
    assert f'# public_key = "{identity.public_key_b64}"' in text
    config = load_agent_config(tmp_path / "conf" / "agent.toml", allow_insecure=True)
    host = pairing.url.removeprefix("http://")
    assert config.coordinator_url == f"ws://{host}/provider/connect"
    assert config.key_path == str(tmp_path / "keys" / "identity.key")
    assert [(b.kind, b.url) for b in config.backends] == [("ollama", engine.url)]
    assert config.pricing.default_input_per_1m == 500_000
    assert config.pricing.default_output_per_1m == 1_000_000
    assert config.pricing.models == {
        "llama3:8b": ModelPrice(200_000, 400_000),
        "qwen3:4b": ModelPrice(0, 0),
    }
    assert config.limits.max_concurrent == 6  # the first activated model's, as setup.rs
    assert said[-1] == f"Wrote {tmp_path / 'conf' / 'agent.toml'}"


async def test_expired_code_writes_nothing(tmp_path: Path) -> None:
    async with FakePairing(expire_after=2) as pairing:
        with pytest.raises(SetupError) as caught:
            await run_setup(
                coordinator=pairing.url,
                config_path=tmp_path / "agent.toml",
                identity_path=tmp_path / "identity.key",
                scan=False,
                poll_interval_s=0.01,
                say=lambda _: None,
            )
    assert str(caught.value) == "the pair code expired; run `modelport agent setup` again"
    assert len(pairing.polls) == 3
    assert not (tmp_path / "agent.toml").exists()
    # The key was made before pairing (so a re-run keeps it), without a provider id.
    assert load_or_create(tmp_path / "identity.key").provider_id is None


async def test_issue_refused_says_so(tmp_path: Path) -> None:
    async with FakePairing(issue_status=503) as pairing:
        with pytest.raises(SetupError) as caught:
            await run_setup(
                coordinator=pairing.url,
                config_path=tmp_path / "agent.toml",
                identity_path=tmp_path / "identity.key",
                scan=False,
                say=lambda _: None,
            )
    assert str(caught.value) == (
        f'POST {pairing.url}/v1/host/pair/issue: HTTP 503: {{"error": "issue refused"}}'
    )
    assert pairing.polls == []


async def test_unreachable_coordinator(tmp_path: Path) -> None:
    async with FakePairing() as pairing:
        url = pairing.url  # closed when the block ends: nothing listens there after
    with pytest.raises(SetupError) as caught:
        await run_setup(
            coordinator=url,
            config_path=tmp_path / "agent.toml",
            identity_path=tmp_path / "identity.key",
            scan=False,
            say=lambda _: None,
        )
    assert str(caught.value).startswith(
        f"POST {url}/v1/host/pair/issue: cannot reach the coordinator"
    )


async def test_rerun_keeps_the_key_and_backs_up_the_old_file(tmp_path: Path) -> None:
    config_path = tmp_path / "agent.toml"
    config_path.write_text("# hand-written\n")
    first = load_or_create(tmp_path / "identity.key")
    async with FakePairing(activate_after=1) as pairing:
        await run_setup(
            coordinator=f"{pairing.url}/",
            config_path=config_path,
            identity_path=tmp_path / "identity.key",
            scan=False,
            poll_interval_s=0.01,
            say=lambda _: None,
        )
    assert pairing.issues == [{"agent_pubkey": first.public_key_b64}]
    assert (tmp_path / "agent.toml.bak").read_text() == "# hand-written\n"
    config = load_agent_config(config_path, allow_insecure=True)
    assert config.backends == ()
    assert config.limits.max_concurrent == 4
    assert config.pricing.models == {}
    assert "placeholder $0.50/M" in config_path.read_text()


@pytest.mark.parametrize(
    ("given", "base", "ws_url"),
    [
        ("https://api.usepod.ai", "https://api.usepod.ai", "wss://api.usepod.ai/provider/connect"),
        ("https://hub.example/", "https://hub.example", "wss://hub.example/provider/connect"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000", "ws://127.0.0.1:9000/provider/connect"),
        (
            "wss://hub.example/provider/connect",
            "https://hub.example",
            "wss://hub.example/provider/connect",
        ),
        ("ws://h:1", "http://h:1", "ws://h:1/provider/connect"),
    ],
)
def test_coordinator_endpoints(given: str, base: str, ws_url: str) -> None:
    assert coordinator_endpoints(given) == (base, ws_url)


@pytest.mark.parametrize("given", ["ftp://h", "api.usepod.ai", ""])
def test_coordinator_endpoints_refuse_what_is_not_a_coordinator(given: str) -> None:
    with pytest.raises(SetupError):
        coordinator_endpoints(given)


def test_pair_page() -> None:
    assert pair_page("https://api.usepod.ai") == "https://usepod.ai/host/pair"
    assert pair_page("https://hub.example") == "https://hub.example/host/pair"


def test_render_keeps_the_file_usepod_compatible(tmp_path: Path) -> None:
    """Kinds usepod-agent lacks become comments (discovery serves them); a dashboard's
    out-of-range concurrency is kept in range, so the file always loads."""
    text = render_config(
        ws_url="wss://hub.example/provider/connect",
        key_path=tmp_path / 'we"ird' / "identity.key",
        public_key_b64="cHVi",
        engines=[
            DetectedEngine("llamacpp", "http://127.0.0.1:8080", ("gemma",)),
            DetectedEngine("localai", "http://127.0.0.1:9931", ("phi",)),
        ],
        paired=Paired("short", "prov-1", ()),
    )
    path = tmp_path / "agent.toml"
    path.write_text(text)
    config = load_agent_config(path)
    assert [b.kind for b in config.backends] == ["llamacpp"]
    assert "# localai at http://127.0.0.1:9931: served through discovery" in text
    assert config.key_path == str(tmp_path / 'we"ird' / "identity.key")
    assert '# host_token     = "…"  (paired)' in text  # a short token is not written
    from modelport.agent.setup import ActivatedModel

    many = render_config(
        ws_url="wss://h/provider/connect",
        key_path=Path("/k"),
        public_key_b64="cHVi",
        engines=[],
        paired=Paired("t", "p", (ActivatedModel("m", 1, 1, 999),)),
    )
    path.write_text(many)
    assert load_agent_config(path).limits.max_concurrent == 256


async def test_unreadable_model_config_means_no_models(tmp_path: Path) -> None:
    """setup.rs reads model_config with `.ok()`: a shape it cannot read is no models."""
    async with FakePairing(activate_after=0, model_config=[{"model_id": 3}]) as pairing:
        result = await run_setup(
            coordinator=pairing.url,
            config_path=tmp_path / "agent.toml",
            identity_path=tmp_path / "identity.key",
            scan=False,
            say=lambda _: None,
        )
    assert result.paired.models == ()

"""One table of every backend kind: connect, config and gateway read it, none copy it."""

from __future__ import annotations

from modelport.backends import connect, kinds
from modelport.backends.mock import MockBackend
from modelport.backends.profiles import DISCOVERY_PORTS, KINDS, PROFILES
from modelport.config import BackendConfig, is_cloud, render_check
from modelport.config import Config as FullConfig


def test_every_kind_connect_accepts_has_one_row() -> None:
    assert list(KINDS) == kinds()
    assert set(PROFILES) | {"ollama", "anthropic", "managed", "mock"} == set(KINDS)
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.default_url is not None or kind.no_url, name
        assert "kind" in kind.fields, name


def test_rows_agree_with_the_adapters_constants() -> None:
    from modelport.backends import anthropic, ollama
    from modelport.discovery import DEFAULT_PORTS

    assert KINDS["anthropic"].default_url == anthropic.DEFAULT_URL
    assert KINDS["anthropic"].api_key_env == anthropic.API_KEY_ENV
    assert KINDS["ollama"].default_url == ollama.DEFAULT_URL
    assert DEFAULT_PORTS == DISCOVERY_PORTS


async def test_connect_builds_through_the_row() -> None:
    backend = connect("mock", name="scripted")
    assert isinstance(backend, MockBackend)
    assert (backend.id, backend.url) == ("scripted", None)
    vllm = connect("vllm:http://127.0.0.1:9/v1")
    assert (vllm.kind, vllm.url) == ("vllm", "http://127.0.0.1:9")
    await vllm.aclose()


def test_cloud_and_local_come_from_the_row() -> None:
    assert KINDS["openrouter"].is_cloud(None)
    assert KINDS["anthropic"].is_cloud("https://api.anthropic.com/v1")
    assert not KINDS["anthropic"].is_cloud("http://127.0.0.1:8080")
    assert not KINDS["vllm"].is_cloud(None)
    assert is_cloud(BackendConfig(kind="openai", url="http://proxy.internal"))


def test_check_shows_each_rows_url() -> None:
    config = FullConfig(
        backends=(
            BackendConfig(kind="mock"),
            BackendConfig(kind="ollama"),
            BackendConfig(kind="managed"),
        )
    )
    text = render_check(config, None, env={"OLLAMA_HOST": "10.0.0.2"})
    assert "  mock (mock)\n    url: none (scripted in-process backend)\n" in text
    assert "    url: default, from OLLAMA_HOST (10.0.0.2)\n" in text
    assert "    url: a free loopback port, chosen when it starts\n" in text

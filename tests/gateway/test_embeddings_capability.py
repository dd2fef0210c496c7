"""Embeddings advertised only where an engine serves them (issue 10, point 9).

A managed llama-server serves /v1/embeddings only when started with --embeddings, and
nothing it serves says whether it was (its /props and /v1/models are the same either way:
measured on the bundled b11434 build). So the managed backend knows it from how it started
the engine, config turns it on (`embeddings = true`), and a request for embeddings on a
chat-only model is a 400 naming the model before any engine starts. For a llama-server we
did not start, nothing is known: its 501 becomes a 400 naming the model, not a 502.

The managed child here is tests/fakes/llama_server.py, which answers /v1/embeddings with
llama-server's 501 unless started with --embeddings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.fakes.catalog import llamacpp_without_embeddings
from tests.gateway.helpers import get, post

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    """A llama-server binary that is the stand-in child, noting the flags it was given."""
    wrapper = tmp_path / "llama-server"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{tmp_path / "argv.log"}"\n'
        f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m tests.fakes.llama_server "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def managed(stand_in: Path, tmp_path: Path, *extra: str) -> str:
    lines = [
        "[[backends]]",
        'kind = "managed"',
        f'llama_server = "{stand_in}"',
        f'model = "{tmp_path / "fake.gguf"}"',
        'alias = "fake"',
        *extra,
    ]
    return "\n".join(lines) + "\n"


async def capabilities_of(url: str, model: str) -> dict[str, bool | None]:
    status, _, raw = await get(url, "/v1/models")
    assert status == 200, raw
    entry = next(m for m in json.loads(raw)["data"] if m["id"] == model)
    return dict(entry["capabilities"])


def argv_log(tmp_path: Path) -> list[str]:
    path = tmp_path / "argv.log"
    return path.read_text().splitlines() if path.exists() else []


async def test_a_chat_only_managed_model_advertises_no_embeddings_and_refuses_them(
    gateway, stand_in: Path, tmp_path: Path
) -> None:
    _gw, url = await gateway(managed(stand_in, tmp_path))
    assert (await capabilities_of(url, "fake"))["embeddings"] is False
    status, _, raw = await post(url, "/v1/embeddings", {"model": "fake", "input": "hello"})
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "model 'fake' does not serve embeddings"
    assert argv_log(tmp_path) == []  # refused before the engine was even started

    # Chat starts it; once it runs, what it reports still says no embeddings.
    chat = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    status, _, raw = await post(url, "/v1/chat/completions", chat)
    assert status == 200, raw
    await _gw.router.refresh()
    assert (await capabilities_of(url, "fake"))["embeddings"] is False
    assert "--embeddings" not in argv_log(tmp_path)[0].split()


async def test_config_starts_a_managed_model_with_embeddings_on(
    gateway, stand_in: Path, tmp_path: Path
) -> None:
    _gw, url = await gateway(managed(stand_in, tmp_path, "embeddings = true"))
    assert (await capabilities_of(url, "fake"))["embeddings"] is True
    status, _, raw = await post(url, "/v1/embeddings", {"model": "fake", "input": ["a", "b"]})
    assert status == 200, raw
    assert len(json.loads(raw)["data"]) == 2
    (argv,) = argv_log(tmp_path)
    assert "--embeddings" in argv.split()
    await _gw.router.refresh()  # running now: llama-server's own report, and we still know
    assert (await capabilities_of(url, "fake"))["embeddings"] is True


async def test_a_llama_server_without_embeddings_is_a_400_naming_the_model(
    fake_engine, gateway
) -> None:
    """A llama-server we did not start: nothing says whether it has --embeddings, so the
    request goes, and its 501 is said as a 400 naming the model (it used to be a 502)."""
    fake = await fake_engine("llamacpp", models=["gemma.gguf"])
    llamacpp_without_embeddings(fake)
    gw, url = await gateway(backends=[{"kind": "llamacpp", "url": fake.url}])
    assert (await capabilities_of(url, "gemma.gguf"))["embeddings"] is None
    status, _, raw = await post(url, "/v1/embeddings", {"model": "gemma.gguf", "input": "hi"})
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == (
        "model 'gemma.gguf' does not serve embeddings (the engine said: This server does "
        "not support embeddings. Start it with `--embeddings`)"
    )
    assert len(fake.requests_to("/v1/embeddings")) == 1
    assert gw.router.upstreams[0].breaker.failures == 0  # not the engine's fault


async def test_an_ollama_completion_model_may_still_embed(fake_engine, gateway) -> None:
    """Ollama's /api/show lists "embedding" only for embedding models, but its /api/embed
    serves any model: a completion model's embeddings are unknown, not refused."""
    fake = await fake_engine("ollama", models=["llama3.2", "nomic-embed-text"])
    _gw, url = await gateway(backends=[{"kind": "ollama", "url": fake.url}])
    assert (await capabilities_of(url, "llama3.2:latest"))["embeddings"] is None
    assert (await capabilities_of(url, "nomic-embed-text:latest"))["embeddings"] is True
    body = {"model": "llama3.2:latest", "input": "hello"}
    status, _, raw = await post(url, "/v1/embeddings", body)
    assert status == 200, raw
    assert len(fake.requests_to("/api/embed")) == 1


async def test_lm_studio_embeds_with_its_embedding_model_only(fake_engine, gateway) -> None:
    """LM Studio's list says which models embed (`type: "embeddings"`): a request for an
    `llm` model's embeddings is a 400 naming it, before the engine."""
    fake = await fake_engine("lmstudio", models=["qwen/qwen3-4b", "text-embedding-nomic"])
    _gw, url = await gateway(backends=[{"kind": "lmstudio", "url": fake.url}])
    status, _, raw = await post(url, "/v1/embeddings", {"model": "qwen/qwen3-4b", "input": "x"})
    assert status == 400, raw
    assert json.loads(raw)["error"]["message"] == "model 'qwen/qwen3-4b' does not serve embeddings"
    assert fake.requests_to("/v1/embeddings") == []
    body = {"model": "text-embedding-nomic", "input": "x"}
    status, _, raw = await post(url, "/v1/embeddings", body)
    assert status == 200, raw

"""The Ollama recorder answers so the official `ollama` Python library parses every call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ollama
import pytest

from tests.clients.ollama_recorder import MISSING_MODEL, start
from tests.clients.recorder import Script

TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Any, Path]]:
    log = tmp_path / "requests.jsonl"
    runner, port = await start(log, Script())
    yield ollama.AsyncClient(host=f"http://127.0.0.1:{port}"), log
    await runner.cleanup()


def entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


async def test_models_show_and_ps_parse(served: tuple[Any, Path]) -> None:
    client, log = served
    listed = await client.list()
    shown = await client.show("m")
    loaded = await client.ps()
    assert listed.models[0].model == "some-model"
    assert shown.modelinfo["general.architecture"] == "llama"
    assert "tools" in (shown.capabilities or [])
    assert loaded.models[0].context_length == 4096
    assert [(e["method"], e["path"]) for e in entries(log)] == [
        ("GET", "/api/tags"),
        ("POST", "/api/show"),
        ("GET", "/api/ps"),
    ]


async def test_chat_stream_ends_with_usage_and_tool_calls_parse(served: tuple[Any, Path]) -> None:
    client, log = served
    parts = [part async for part in await client.chat("m", messages=HI, stream=True, think=True)]
    whole = await client.chat("m", messages=HI, tools=[TOOL])
    assert "".join(p.message.content or "" for p in parts) == "hi from the recorder"
    assert parts[0].message.thinking == "thinking it over"
    assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count == 5
    call = whole.message.tool_calls[0].function
    assert (call.name, dict(call.arguments)) == ("get_weather", {"city": "Paris"})
    bodies = [e["body"] for e in entries(log)]
    assert (bodies[0]["stream"], bodies[0]["think"]) == (True, True)
    assert bodies[1]["stream"] is False


async def test_generate_embed_and_missing_model(served: tuple[Any, Path]) -> None:
    client, _ = served
    generated = await client.generate("m", "def f(", suffix=")")
    embedded = await client.embed("m", input=["a", "b"])
    legacy = await client.embeddings("m", prompt="a")
    assert generated.response == "hi from the recorder" and generated.context == [1, 2, 3]
    assert len(embedded.embeddings) == 2 and legacy.embedding == [0.1, -0.2, 0.3]
    with pytest.raises(ollama.ResponseError) as refused:
        await client.show(MISSING_MODEL)
    assert refused.value.status_code == 404
    assert refused.value.error == f"model '{MISSING_MODEL}' not found"

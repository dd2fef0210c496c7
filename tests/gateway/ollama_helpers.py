"""The `ollama` library (0.6.3, dev extra) as a real client of the gateway's Ollama API.

`served(kind)` starts a protocol fake of `kind` and a gateway over it: "ollama" is the
passthrough case (the fake speaks /api/chat and /api/generate), "llamacpp" the transcoding
one (an OpenAI-compatible engine). The bodies the library sends are those recorded in
docs/captures/clients/ollama-py-*.jsonl.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ollama
import pytest

from tests.fakes import FakeEngine

MODEL = "llama3.2:latest"
VISION = "llava:latest"  # the fakes say a "llava" model sees images
ENGINES = ("ollama", "llamacpp")  # passthrough, transcoding
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string", "description": "the city"}},
        },
    },
}
PNG = (  # a 1x1 PNG, as ollama-py-chat-images.jsonl sends it
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

Served = Callable[..., Awaitable[tuple[FakeEngine, ollama.AsyncClient]]]


@pytest.fixture(name="served")
async def served_fixture(fake_engine: Any, gateway: Any) -> AsyncIterator[Served]:
    """`fake, client = await served(kind, models=[...], aliases=..., **fake_kw)`."""
    clients: list[ollama.AsyncClient] = []

    async def start(
        kind: str,
        models: list[str] | None = None,
        aliases: dict[str, list[str]] | None = None,
        **fake_kw: Any,
    ) -> tuple[FakeEngine, ollama.AsyncClient]:
        fake = await fake_engine(kind, models=models or [MODEL], **fake_kw)
        _gw, url = await gateway(backends=[{"kind": kind, "url": fake.url}], aliases=aliases)
        client = ollama.AsyncClient(host=url, timeout=10.0)
        clients.append(client)
        return fake, client

    yield start
    for client in clients:
        await client._client.aclose()


def engine_body(fake: FakeEngine) -> dict[str, Any]:
    """The last chat body the engine got, whichever surface it came on."""
    chats = [
        r
        for r in fake.requests
        if r.path in ("/api/chat", "/api/generate", "/v1/chat/completions", "/v1/messages")
    ]
    assert chats, [r.path for r in fake.requests]
    body: dict[str, Any] = chats[-1].json
    return body

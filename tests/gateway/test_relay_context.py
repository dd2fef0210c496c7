"""What a passthrough carries of the client's request besides its body: the query string and
the dialect's own headers (Claude Code sends `?beta=true`, `anthropic-beta` and its
`anthropic-version`); transcoding carries none of it to an engine of another dialect."""

from __future__ import annotations

import aiohttp

from tests.fakes import Reply
from tests.gateway.helpers import backend, chat_requests

BODY = {
    "model": "qwen",
    "max_tokens": 16,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}
CLAUDE_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "x-api-key": "client-key-not-for-the-engine",
    "x-stainless-lang": "js",
}


async def _post(url: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json=BODY, headers=headers) as response,
    ):
        return response.status, await response.read()


async def test_passthrough_carries_the_query_and_the_dialect_headers(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    vllm.default_reply = Reply(text="Hello.")
    _gw, url = await gateway(backends=[backend("vllm", vllm)])

    status, body = await _post(url, "/v1/messages?beta=true", CLAUDE_HEADERS)

    assert status == 200 and b"message_stop" in body
    sent = chat_requests(vllm)[0]
    assert sent.path == "/v1/messages"
    assert sent.query == {"beta": "true"}
    assert sent.headers.get("anthropic-beta") == CLAUDE_HEADERS["anthropic-beta"]
    assert sent.headers.get("anthropic-version") == "2023-06-01"
    # Only the dialect's own headers go along: never the client's credentials or the rest.
    assert sent.headers.get("x-api-key") is None
    assert sent.headers.get("x-stainless-lang") is None


async def test_the_clients_version_wins_over_the_default(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])

    status, _ = await _post(url, "/v1/messages", {"anthropic-version": "2024-01-01"})

    assert status == 200
    sent = chat_requests(vllm)[0]
    assert sent.headers.get("anthropic-version") == "2024-01-01"
    assert sent.query == {}


async def test_transcoding_carries_neither(fake_engine, gateway) -> None:
    localai = await fake_engine("localai", models=["qwen"])  # speaks OpenAI only
    _gw, url = await gateway(backends=[backend("localai", localai)])

    status, body = await _post(url, "/v1/messages?beta=true", CLAUDE_HEADERS)

    assert status == 200 and b"message_stop" in body
    sent = chat_requests(localai)[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.query == {}
    assert sent.headers.get("anthropic-beta") is None

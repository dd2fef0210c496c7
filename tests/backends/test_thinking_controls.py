"""A Claude Code request (adaptive thinking, effort high, a signed thinking block in its
history) reaches each OpenAI-compatible engine with that engine's own thinking controls."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from modelport.backends.openai_compat import OpenAICompatBackend
from modelport.types import ChatRequest, Reasoning
from modelport.wire import anthropic
from tests.captures import client_requests

ROUND_TRIP = {r.name: r for r in client_requests("claude-code-tool-bash-thinking.jsonl")}[
    "claude-code-tool-bash-thinking#2"
]
CLOUD = {"openai", "openrouter", "venice"}


async def _sent(fake_engine: Any, kind: str, request: ChatRequest) -> dict[str, Any]:
    key = "sk-test" if kind in CLOUD else None
    fake = await fake_engine(kind, models=["some-model"], api_key=key, context_window=1_000_000)
    backend = OpenAICompatBackend(kind, fake.url, api_key=key)
    try:
        [e async for e in backend.stream(request)]
    finally:
        await backend.aclose()
    body: dict[str, Any] = fake.requests[-1].json
    return body


def _claude_code_request() -> ChatRequest:
    # As the service hands it to a backend when transcoding: the client's extra fields dropped.
    decoded = anthropic.decode_request(ROUND_TRIP.body)
    return msgspec.structs.replace(decoded, extra={})


@pytest.mark.parametrize("kind", ["llamacpp", "vllm"])
async def test_template_engines_get_the_switch_in_chat_template_kwargs(
    fake_engine: Any, kind: str
) -> None:
    sent = await _sent(fake_engine, kind, _claude_code_request())
    assert sent["chat_template_kwargs"] == {"enable_thinking": True, "reasoning_effort": "high"}
    assert sent["reasoning_effort"] == "high"
    assert sent["messages"][3]["reasoning_content"] == "I should run it."
    off = msgspec.structs.replace(_claude_code_request(), reasoning=Reasoning(effort="none"))
    sent = await _sent(fake_engine, kind, off)
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
    assert "reasoning_effort" not in sent  # "none" is not a level these engines know


@pytest.mark.parametrize("kind", ["lmstudio", "localai", "ollama", "openrouter"])
async def test_other_engines_get_reasoning_effort_only(fake_engine: Any, kind: str) -> None:
    sent = await _sent(fake_engine, kind, _claude_code_request())
    assert sent["reasoning_effort"] == "high"
    assert "chat_template_kwargs" not in sent
    assert sent["messages"][3]["reasoning_signature"] == "cmVjb3JkZXItc2lnbmF0dXJl"


async def test_openai_gets_no_thinking_history(fake_engine: Any) -> None:
    """OpenAI refuses message fields it does not know: earlier thinking (and the signature
    only Anthropic can check) is left out of the assistant message, the rest kept."""
    sent = await _sent(fake_engine, "openai", _claude_code_request())
    assistant = sent["messages"][3]
    assert assistant["role"] == "assistant"
    assert "reasoning_content" not in assistant and "reasoning_signature" not in assistant
    assert assistant["tool_calls"][0]["function"]["name"] == "Bash"
    assert sent["reasoning_effort"] == "high"
    assert sent["max_completion_tokens"] == 32000

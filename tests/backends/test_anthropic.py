"""AnthropicBackend against the Anthropic fake and engines that serve /v1/messages."""

from __future__ import annotations

import json

import pytest

from modelport import (
    AuthError,
    ChatRequest,
    Done,
    EmbedRequest,
    FinishReason,
    Image,
    Message,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    Reasoning,
    Text,
    TextDelta,
    ThinkingDelta,
    Tool,
    ToolCallEnd,
    Unreachable,
    Unsupported,
    Usage,
    WireFormat,
)
from modelport.backends import connect
from modelport.backends.anthropic import AnthropicBackend
from tests.fakes import Reply

KEY = "sk-ant-test"


def request(**kw: object) -> ChatRequest:
    base: dict[str, object] = {"model": "claude-x", "messages": (Message.user("hi"),)}
    return ChatRequest(**{**base, **kw})  # type: ignore[arg-type]


async def anthropic_fake(fake_engine, **kw: object):  # type: ignore[no-untyped-def]
    fake = await fake_engine("anthropic", models=["claude-x"], api_key=KEY, **kw)
    return AnthropicBackend(fake.url, api_key=KEY), fake


async def test_stream_thinking_text_and_usage(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await anthropic_fake(fake_engine)
    fake.default_reply = Reply(thinking="Consider.", text="Answer here.", usage=(21, 6))
    try:
        events = [e async for e in backend.stream(request(reasoning=Reasoning(budget_tokens=1024)))]
    finally:
        await backend.aclose()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Answer here."
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert "".join(e.text for e in thinking) == "Consider."
    assert any(e.signature for e in thinking)  # the signature survives
    assert events[-1] == Done(FinishReason.STOP, Usage(21, 6), "end_turn")
    sent = fake.requests[-1]
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent.json["stream"] is True


async def test_tool_use_stream(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await anthropic_fake(fake_engine)
    fake.default_reply = Reply(
        text="Let me check.", tool_calls=[("toolu_1", "get_weather", {"city": "Rome"})]
    )
    tools = (Tool("get_weather", "Weather now", {"type": "object", "properties": {}}),)
    try:
        events = [e async for e in backend.stream(request(tools=tools))]
    finally:
        await backend.aclose()
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [(e.id, e.name, e.arguments) for e in ends] == [
        ("toolu_1", "get_weather", {"city": "Rome"})
    ]
    assert events[-1].finish_reason is FinishReason.TOOL_CALLS  # type: ignore[union-attr]
    assert fake.requests[-1].json["tools"][0]["input_schema"] == {
        "type": "object",
        "properties": {},
    }


async def test_non_streaming_with_image(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await anthropic_fake(fake_engine)
    fake.default_reply = Reply(text="A red square.", usage=(30, 4))
    message = Message(
        "user", (Text("what is this?"), Image(data="iVBORw0KGgo=", media_type="image/png"))
    )
    try:
        response = await backend.chat(request(messages=(message,), max_tokens=64))
    finally:
        await backend.aclose()
    assert response.message.text == "A red square."
    assert response.usage == Usage(30, 4)
    content = fake.requests[-1].json["messages"][0]["content"]
    assert content[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert fake.requests[-1].json["max_tokens"] == 64


async def test_count_tokens(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await anthropic_fake(fake_engine)
    try:
        tokens = await backend.count_tokens(request())
    finally:
        await backend.aclose()
    assert isinstance(tokens, int) and tokens > 0
    assert fake.requests[-1].path == "/v1/messages/count_tokens"


async def test_list_models_max_input_tokens(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, _fake = await anthropic_fake(fake_engine, context_window=200_000)
    try:
        found = await backend.list_models()
        health = await backend.health()
    finally:
        await backend.aclose()
    assert [m.id for m in found] == ["claude-x"]
    assert found[0].context_window == 200_000
    assert found[0].capabilities.tools and found[0].capabilities.vision
    assert health.ready and health.latency_ms is not None


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthError), (404, ModelNotFound), (429, RateLimited), (529, Overloaded)],
)
async def test_error_statuses(fake_engine, status: int, error: type) -> None:
    backend, fake = await anthropic_fake(fake_engine)
    fake.default_reply = Reply(
        status=status, error_message="model: claude-x trouble", retry_after="3"
    )
    try:
        with pytest.raises(error):
            [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()


async def test_mid_stream_error_event(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await anthropic_fake(fake_engine)
    fake.default_reply = Reply(text="x" * 40, fail_after_chunks=2, error_message="Overloaded")
    seen: list[object] = []
    try:
        with pytest.raises(Overloaded):
            async for event in backend.stream(request()):
                seen.append(event)
    finally:
        await backend.aclose()
    assert any(isinstance(e, TextDelta) for e in seen)


async def test_dropped_stream(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await anthropic_fake(fake_engine)
    fake.default_reply = Reply(text="x" * 40, drop_after_chunks=2)
    try:
        with pytest.raises(ProtocolError):
            [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()


async def test_missing_key_fails_before_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    backend = connect("anthropic")
    try:
        with pytest.raises(AuthError, match="ANTHROPIC_API_KEY"):
            [e async for e in backend.stream(request())]
        with pytest.raises(AuthError):
            await backend.list_models()
    finally:
        await backend.aclose()


async def test_embeddings_unsupported_before_io(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await anthropic_fake(fake_engine)
    try:
        with pytest.raises(Unsupported):
            await backend.embed(EmbedRequest(model="claude-x", inputs=("a",)))
    finally:
        await backend.aclose()
    assert fake.requests == []


async def test_relay_passthrough(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await anthropic_fake(fake_engine)
    fake.default_reply = Reply(text="relayed", usage=(8, 2))
    body = {
        "model": "claude-x",
        "max_tokens": 10,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    try:
        relay = await backend.relay(WireFormat.ANTHROPIC, json.dumps(body).encode())
        data = b"".join([c async for c in relay])
    finally:
        await backend.aclose()
    assert b"event: message_start" in data and b"event: message_stop" in data
    assert relay.usage == Usage(8, 2) and relay.finish_reason is FinishReason.STOP
    assert fake.requests[-1].json == body


@pytest.mark.parametrize("kind", ["llamacpp", "vllm", "ollama"])
async def test_engines_serving_messages_by_url(fake_engine, kind: str) -> None:
    fake = await fake_engine(kind, models=["m"])
    fake.default_reply = Reply(text="local messages", usage=(5, 3))
    backend = AnthropicBackend(fake.url)  # a local URL needs no key
    try:
        events = [e async for e in backend.stream(request(model="m", max_tokens=64))]
    finally:
        await backend.aclose()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "local messages"
    assert isinstance(events[-1], Done) and events[-1].usage == Usage(5, 3)


async def test_unreachable(refused_url) -> None:  # type: ignore[no-untyped-def]
    backend = AnthropicBackend(refused_url)
    try:
        with pytest.raises(Unreachable):
            await backend.chat(request())
        assert not (await backend.health()).alive
    finally:
        await backend.aclose()

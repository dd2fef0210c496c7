"""OllamaBackend against the protocol fake (the codec's own tests are in tests/wire/ollama/)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.backends.base import Backend
from modelport.backends.ollama import OllamaBackend, url_from_env
from modelport.errors import (
    BackendError,
    ContextWindowExceeded,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    Unreachable,
    Unsupported,
)
from modelport.types import (
    Capabilities,
    ChatRequest,
    Done,
    EmbedRequest,
    Event,
    FinishReason,
    Image,
    Message,
    Reasoning,
    RelayFormat,
    Text,
    TextDelta,
    ThinkingDelta,
    Tool,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    WireFormat,
)
from tests.fakes import Reply, fake_vector

# =====================================================================================
# OllamaBackend against the protocol fake


def request(model: str = "llama3.2", **kw: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=(Message.user("hi"),), **kw)


async def backend_for(fake_engine: Any, **kw: Any) -> tuple[OllamaBackend, Any]:
    fake = await fake_engine("ollama", models=kw.pop("models", ["llama3.2"]), **kw)
    return OllamaBackend(fake.url), fake


async def test_is_a_backend_with_both_formats(fake_engine: Any) -> None:
    """Issue 10 point 11 changed this: the /v1 formats come once the version is known."""
    backend, fake = await backend_for(fake_engine)
    try:
        assert isinstance(backend, Backend)
        assert backend.kind == "ollama"
        assert backend.id == f"ollama:{fake.url}"
        native = {WireFormat.OLLAMA, WireFormat.OLLAMA_GENERATE}
        assert backend.formats == native  # the version is not known yet
        await backend.list_models()
        assert backend.formats == {
            WireFormat.OPENAI,
            WireFormat.ANTHROPIC,
            RelayFormat.COMPLETIONS,
            *native,
        }
    finally:
        await backend.aclose()


async def test_stream_text_with_usage(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(text="The quick brown fox.", usage=(11, 4))
    try:
        events = [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert "".join(d.text for d in deltas) == "The quick brown fox."
    assert len(deltas) == 5  # four characters a line: streamed, not whole
    assert events[-1] == Done(FinishReason.STOP, Usage(11, 4), "stop")
    sent = fake.last
    assert (sent.method, sent.path) == ("POST", "/api/chat")
    assert sent.json == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }


async def test_stream_thinking_when_reasoning_is_requested(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine, models=["qwen3:8b"])
    fake.default_reply = Reply(thinking="Let me think.", text="42")
    try:
        events = [e async for e in backend.stream(request("qwen3:8b", reasoning=Reasoning()))]
        plain = [e async for e in backend.stream(request("qwen3:8b"))]
    finally:
        await backend.aclose()
    assert fake.requests[0].json["think"] is True
    assert "think" not in fake.requests[1].json
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert "".join(t.text for t in thinking) == "Let me think."
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert max(i for i, e in enumerate(events) if isinstance(e, ThinkingDelta)) < first_text
    assert not [e for e in plain if isinstance(e, ThinkingDelta)]
    assert "".join(e.text for e in plain if isinstance(e, TextDelta)) == "42"


async def test_stream_tool_calls_whole_with_minted_ids(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(
        text="",
        tool_calls=[
            (None, "get_weather", {"city": "Paris", "unit": "c"}),
            ("call_b", "get_time", {"tz": "Europe/Paris"}),
        ],
    )
    tools = (Tool("get_weather", "Weather", {"type": "object"}), Tool("get_time"))
    try:
        events = [e async for e in backend.stream(request(tools=tools))]
    finally:
        await backend.aclose()
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [(s.index, s.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    assert [(e.index, e.name, e.arguments) for e in ends] == [
        (0, "get_weather", {"city": "Paris", "unit": "c"}),
        (1, "get_time", {"tz": "Europe/Paris"}),
    ]
    assert ends[0].id.startswith("call_") and len(ends[0].id) == 37 and ends[0].id == starts[0].id
    assert ends[1].id == "call_b"
    assert [e for e in events if isinstance(e, ToolCallDelta)] == [
        ToolCallDelta(0, '{"city":"Paris","unit":"c"}'),
        ToolCallDelta(1, '{"tz":"Europe/Paris"}'),
    ]
    assert events[-1] == Done(FinishReason.TOOL_CALLS, Usage(7, 5), "stop")
    assert [t["function"]["name"] for t in fake.last.json["tools"]] == ["get_weather", "get_time"]


async def test_images_sent_as_base64_list(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    picture = Message(
        "user", (Text("what is this?"), Image(data="iVBORw0KGgo=", media_type="image/png"))
    )
    try:
        await backend.chat(ChatRequest(model="llama3.2", messages=(picture,)))
    finally:
        await backend.aclose()
    assert fake.last.json["messages"] == [
        {"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo="]}
    ]


async def test_image_url_is_unsupported_before_any_io(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    linked = Message("user", (Image(url="https://example.com/cat.png"),))
    try:
        with pytest.raises(Unsupported):
            [e async for e in backend.stream(ChatRequest(model="llama3.2", messages=(linked,)))]
    finally:
        await backend.aclose()
    assert fake.requests == []


async def test_options_mapping_and_keep_alive(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    try:
        await backend.chat(
            request(
                temperature=0.3,
                top_p=0.8,
                max_tokens=50,
                stop=("END",),
                extra={"keep_alive": "5m", "seed": 3, "options": {"num_ctx": 8192}},
            )
        )
    finally:
        await backend.aclose()
    body = fake.last.json
    assert body["options"] == {
        "num_ctx": 8192,
        "seed": 3,
        "temperature": 0.3,
        "top_p": 0.8,
        "num_predict": 50,
        "stop": ["END"],
    }
    assert body["keep_alive"] == "5m"
    assert "seed" not in body


async def test_chat_non_streaming(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine, models=["qwen3:8b"])
    fake.default_reply = Reply(
        text="Whole answer.", thinking="Thought.", usage=(9, 3), tool_calls=[(None, "f", {"a": 1})]
    )
    try:
        response = await backend.chat(request("qwen3:8b", reasoning=Reasoning(effort="low")))
    finally:
        await backend.aclose()
    assert fake.last.json["stream"] is False
    assert response.model == "qwen3:8b"
    assert response.message.text == "Whole answer."
    assert response.message.thinking == "Thought."
    [call] = response.message.tool_calls
    assert (call.name, call.arguments) == ("f", {"a": 1}) and call.id.startswith("call_")
    assert (response.finish_reason, response.usage) == (FinishReason.TOOL_CALLS, Usage(9, 3))


async def test_embed(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine, models=["nomic-embed-text"])
    try:
        result = await backend.embed(
            EmbedRequest(model="nomic-embed-text", inputs=("hello world", "x"))
        )
    finally:
        await backend.aclose()
    assert fake.last.path == "/api/embed"
    assert fake.last.json == {"model": "nomic-embed-text", "input": ["hello world", "x"]}
    assert result.vectors == (tuple(fake_vector("hello world")), tuple(fake_vector("x")))
    assert result.usage == Usage(3, 0)


async def test_list_models(fake_engine: Any) -> None:
    backend, fake = await backend_for(
        fake_engine,
        models=["llama3.2", "qwen3:8b", "llava:7b", "nomic-embed-text"],
        not_loaded=["llava:7b", "nomic-embed-text"],
        context_window=8192,
        train_context=131072,
    )
    try:
        found = await backend.list_models()
    finally:
        await backend.aclose()
    summary = [(m.id, m.context_window, m.loaded, m.capabilities) for m in found]
    # Embeddings: known for an embedding model; a completion model may embed too (Ollama's
    # /api/embed asks nothing of the model), so unknown rather than no (issue 10, point 9).
    maybe = {"embeddings": None}
    assert summary == [
        (
            "llama3.2:latest",
            8192,
            True,
            Capabilities(tools=True, json_schema=True, **maybe),
        ),
        (
            "qwen3:8b",
            8192,
            True,
            Capabilities(tools=True, thinking=True, json_schema=True, **maybe),
        ),
        (
            "llava:7b",
            131072,
            False,
            Capabilities(tools=True, vision=True, json_schema=True, **maybe),
        ),
        ("nomic-embed-text:latest", 131072, False, Capabilities(embeddings=True)),
    ]
    assert found[0].native["details"]["family"] == "llama3"
    shows = sorted(r.json["model"] for r in fake.requests_to("/api/show"))
    assert shows == sorted(m.id for m in found)
    assert len(fake.requests_to("/api/ps")) == 1 and len(fake.requests_to("/api/tags")) == 1


async def test_health_up_and_refused(fake_engine: Any, refused_url: str) -> None:
    backend, fake = await backend_for(fake_engine)
    down = OllamaBackend(refused_url)
    try:
        up = await backend.health()
        gone = await down.health()
    finally:
        await backend.aclose()
        await down.aclose()
    assert (up.alive, up.ready, up.last_error) == (True, True, None)
    assert up.latency_ms is not None and up.latency_ms >= 0
    assert fake.last.path == "/"
    assert (gone.alive, gone.ready, gone.latency_ms) == (False, False, None)
    assert gone.last_error and "cannot connect" in gone.last_error


async def test_refused_stream_is_unreachable(refused_url: str) -> None:
    backend = OllamaBackend(refused_url)
    try:
        with pytest.raises(Unreachable) as caught:
            [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()
    assert caught.value.backend_id == backend.id


async def test_missing_model_is_model_not_found(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    try:
        with pytest.raises(ModelNotFound) as caught:
            [e async for e in backend.stream(request("nope"))]
        with pytest.raises(ModelNotFound):
            await backend.chat(request("nope"))
        with pytest.raises(ModelNotFound):
            await backend.embed(EmbedRequest(model="nope", inputs=("x",)))
    finally:
        await backend.aclose()
    assert caught.value.message == "model 'nope' not found"
    assert [r.path for r in fake.requests] == ["/api/chat", "/api/chat", "/api/embed"]
    assert (caught.value.status, caught.value.backend_id) == (404, backend.id)


async def test_loading_is_overloaded(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine, loading=True)
    try:
        with pytest.raises(Overloaded):
            await backend.chat(request())
    finally:
        await backend.aclose()
    assert fake.last.path == "/api/chat"


async def test_context_overflow(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(status=400)
    try:
        with pytest.raises(ContextWindowExceeded):
            await backend.chat(request())
    finally:
        await backend.aclose()


async def test_mid_stream_error_raises_after_partial_text(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(
        text="abcdefghijklmnop", fail_after_chunks=2, error_message="runner fell over"
    )
    seen: list[Event] = []
    try:
        with pytest.raises(BackendError) as caught:
            async for event in backend.stream(request()):
                seen.append(event)
    finally:
        await backend.aclose()
    assert caught.value.message == "runner fell over"
    assert caught.value.backend_id == backend.id
    assert seen == [TextDelta("abcd"), TextDelta("efgh")]


async def test_dropped_stream_is_protocol_error(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(text="abcdefghijklmnop", drop_after_chunks=2)
    seen: list[Event] = []
    try:
        with pytest.raises(ProtocolError):
            async for event in backend.stream(request()):
                seen.append(event)
    finally:
        await backend.aclose()
    assert seen == [TextDelta("abcd"), TextDelta("efgh")]


async def test_connection_dropped_before_the_answer_is_unreachable(fake_engine: Any) -> None:
    """Nothing reached us, so the router may still try another backend."""
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(text="abcdefghijklmnop", drop_after_chunks=0)
    try:
        with pytest.raises(Unreachable, match="Server disconnected"):
            await backend.chat(request())
    finally:
        await backend.aclose()


async def test_relay_openai(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(text="pass me through", usage=(6, 3))
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    try:
        relay = await backend.relay(WireFormat.OPENAI, json.dumps(body).encode())
        relayed = b"".join([c async for c in relay])
    finally:
        await backend.aclose()
    assert fake.last.path == "/v1/chat/completions"
    assert fake.last.json["stream_options"] == {"include_usage": True}
    assert relayed.startswith(b"data: {") and relayed.rstrip().endswith(b"data: [DONE]")
    content = [
        json.loads(raw[6:])["choices"][0]["delta"].get("content") or ""
        for raw in relayed.split(b"\n")
        if raw.startswith(b"data: {") and json.loads(raw[6:])["choices"]
    ]
    assert "".join(content) == "pass me through"
    assert (relay.usage, relay.finish_reason) == (Usage(6, 3), FinishReason.STOP)


async def test_relay_anthropic(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(text="bonjour", usage=(5, 2))
    body = {
        "model": "llama3.2",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    try:
        relay = await backend.relay(WireFormat.ANTHROPIC, json.dumps(body).encode())
        relayed = b"".join([c async for c in relay])
    finally:
        await backend.aclose()
    assert fake.last.path == "/v1/messages"
    assert relayed.startswith(b"event: message_start") and b"event: message_stop" in relayed
    assert (relay.usage, relay.finish_reason) == (Usage(5, 2), FinishReason.STOP)


async def test_relay_missing_model_raises_before_bytes(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    body = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    try:
        with pytest.raises(ModelNotFound):
            await backend.relay(WireFormat.OPENAI, json.dumps(body).encode())
    finally:
        await backend.aclose()
    assert fake.last.path == "/v1/chat/completions"


async def test_abandoned_stream_closes_the_upstream(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    fake.default_reply = Reply(text="x" * 400, chunk_chars=1, delay_s=0.01)
    try:
        stream = backend.stream(request())
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        await stream.aclose()  # type: ignore[attr-defined]
        assert await fake.wait_disconnects(1) == 1
    finally:
        await backend.aclose()
    assert fake.disconnects == 1


async def test_ollama_host_env(fake_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = await fake_engine("ollama", models=["llama3.2"])
    monkeypatch.setenv("OLLAMA_HOST", fake.url.removeprefix("http://"))
    backend = OllamaBackend()
    try:
        health = await backend.health()
    finally:
        await backend.aclose()
    assert backend.id == f"ollama:{fake.url}"
    assert health.ready


def test_default_url_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert OllamaBackend().url == "http://127.0.0.1:11434"
    assert OllamaBackend("http://h:1/v1/").url == "http://h:1"
    assert OllamaBackend("http://h:1/api").id == "ollama:http://h:1"


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("", "http://127.0.0.1:11434"),
        ("localhost", "http://localhost:11434"),
        ("localhost:1234", "http://localhost:1234"),
        (":5000", "http://127.0.0.1:5000"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11435", "http://127.0.0.1:11435"),
        ("http://gpu-box", "http://gpu-box:80"),
        ("https://ollama.example.com", "https://ollama.example.com:443"),
        ("https://h:8443/ollama/", "https://h:8443/ollama"),
        ("::1", "http://[::1]:11434"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("[::]", "http://127.0.0.1:11434"),
    ],
)
def test_url_from_env(value: str, url: str) -> None:
    assert url_from_env(value) == url

"""OpenAICompatBackend against protocol fakes of every OpenAI-compatible engine."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from modelport import (
    AuthError,
    ChatRequest,
    ContextWindowExceeded,
    Done,
    EmbedRequest,
    FinishReason,
    Message,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    Unreachable,
    Usage,
    WireFormat,
)
from modelport.backends import connect, parse_spec
from modelport.backends.openai_compat import OpenAICompatBackend
from modelport.errors import InvalidRequest, Unsupported
from tests.fakes import Reply

LOCAL_KINDS = ["llamacpp", "vllm", "lmstudio", "localai", "ollama"]
CLOUD_KINDS = ["openai", "openrouter", "venice"]
ALL_KINDS = LOCAL_KINDS + CLOUD_KINDS


def request(model: str = "m", **kw: object) -> ChatRequest:
    return ChatRequest(model=model, messages=(Message.user("hi"),), **kw)  # type: ignore[arg-type]


async def backend_for(fake_engine, kind: str, **kw: object) -> OpenAICompatBackend:  # type: ignore[no-untyped-def]
    key = "sk-test" if kind in CLOUD_KINDS else None
    fake = await fake_engine(kind, models=["m"], api_key=key, **kw)
    return OpenAICompatBackend(kind, fake.url, api_key=key), fake  # type: ignore[return-value]


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_stream_text_usage_and_finish(fake_engine, kind: str) -> None:
    backend, fake = await backend_for(fake_engine, kind)
    fake.default_reply = Reply(text="The quick brown fox.", usage=(11, 4))
    try:
        events = [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "The quick brown fox."
    assert len([e for e in events if isinstance(e, TextDelta)]) > 1  # streamed, not whole
    assert events[-1] == Done(FinishReason.STOP, Usage(11, 4), "stop")
    sent = fake.requests[-1]
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("kind", ["llamacpp", "vllm", "ollama", "openrouter"])
async def test_stream_thinking_then_text(fake_engine, kind: str) -> None:
    backend, fake = await backend_for(fake_engine, kind)
    fake.default_reply = Reply(thinking="Let me think.", text="42")
    try:
        events = [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    assert thinking == "Let me think."
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    last_thinking = max(i for i, e in enumerate(events) if isinstance(e, ThinkingDelta))
    assert last_thinking < first_text


@pytest.mark.parametrize("kind", ["llamacpp", "vllm", "ollama", "openai"])
async def test_stream_parallel_tool_calls(fake_engine, kind: str) -> None:
    backend, fake = await backend_for(fake_engine, kind)
    fake.default_reply = Reply(
        text="",
        tool_calls=[
            ("call_a", "get_weather", {"city": "Paris", "unit": "c"}),
            (None if kind == "ollama" else "call_b", "get_time", {"tz": "Europe/Paris"}),
        ],
    )
    try:
        events = [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [s.name for s in starts] == ["get_weather", "get_time"]
    assert [(e.index, e.name, e.arguments) for e in ends] == [
        (0, "get_weather", {"city": "Paris", "unit": "c"}),
        (1, "get_time", {"tz": "Europe/Paris"}),
    ]
    assert ends[0].id == "call_a"
    assert all(e.id for e in ends)  # minted when the engine gives none
    assert events[-1].finish_reason is FinishReason.TOOL_CALLS  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["vllm", "llamacpp", "openrouter"])
async def test_chat_non_streaming(fake_engine, kind: str) -> None:
    backend, fake = await backend_for(fake_engine, kind)
    fake.default_reply = Reply(text="Whole answer.", usage=(9, 3))
    try:
        response = await backend.chat(request(max_tokens=20))
    finally:
        await backend.aclose()
    assert response.message.text == "Whole answer."
    assert response.usage == Usage(9, 3)
    assert response.finish_reason is FinishReason.STOP
    assert fake.requests[-1].json["stream"] is False
    assert fake.requests[-1].json["max_tokens"] == 20


async def test_openai_profile_sends_max_completion_tokens(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "openai")
    try:
        await backend.chat(request(max_tokens=20))
    finally:
        await backend.aclose()
    body = fake.requests[-1].json
    assert body["max_completion_tokens"] == 20 and "max_tokens" not in body
    assert fake.requests[-1].headers["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("kind", ["llamacpp", "vllm", "openrouter"])
async def test_relay_passes_bytes_through_and_meters(fake_engine, kind: str) -> None:
    backend, fake = await backend_for(fake_engine, kind)
    fake.default_reply = Reply(text="pass me through", usage=(6, 3))
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    try:
        relay = await backend.relay(WireFormat.OPENAI, json.dumps(body).encode())
        relayed = b"".join([chunk async for chunk in relay])
        # The same request straight to the engine, as the relay sent it.
        sent = fake.requests[-1]
        assert sent.json["stream_options"] == {"include_usage": True}
        async with aiohttp.ClientSession() as session:
            path = sent.path
            async with session.post(
                fake.url + path,
                json=sent.json,
                headers={"Authorization": sent.headers.get("Authorization", "")},
            ) as direct:
                expected = await direct.read()
    finally:
        await backend.aclose()
    assert _strip_volatile(relayed) == _strip_volatile(expected)
    assert relay.usage == Usage(6, 3)
    assert relay.finish_reason is FinishReason.STOP


def _strip_volatile(sse: bytes) -> list[object]:
    """SSE frames with ids and timestamps removed: two runs differ only there."""
    out: list[object] = []
    for line in sse.split(b"\n"):
        if line.startswith(b"data: {"):
            frame = json.loads(line[6:])
            for key in ("id", "created", "timings", "system_fingerprint"):
                frame.pop(key, None)
            for choice in frame.get("choices", []):
                for call in choice.get("delta", {}).get("tool_calls", []) or []:
                    call.pop("id", None)
            out.append(frame)
        elif line:
            out.append(line)
    return out


async def test_relay_anthropic_format_on_llamacpp(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "llamacpp")
    fake.default_reply = Reply(text="bonjour", usage=(5, 2))
    body = {
        "model": "m",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    try:
        relay = await backend.relay(WireFormat.ANTHROPIC, json.dumps(body).encode())
        relayed = b"".join([chunk async for chunk in relay])
    finally:
        await backend.aclose()
    assert fake.requests[-1].path == "/v1/messages"
    assert b"event: message_stop" in relayed
    assert relay.usage == Usage(5, 2)
    assert relay.finish_reason is FinishReason.STOP


async def test_relay_refuses_a_format_the_engine_lacks(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "localai")
    try:
        with pytest.raises(Unsupported):
            await backend.relay(WireFormat.ANTHROPIC, b"{}")
    finally:
        await backend.aclose()
    assert fake.requests == []


async def test_relay_mid_stream_error_is_withheld_and_raised(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "openrouter")
    fake.default_reply = Reply(text="a" * 40, fail_after_chunks=2, error_message="upstream died")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    chunks: list[bytes] = []
    try:
        relay = await backend.relay(WireFormat.OPENAI, json.dumps(body).encode())
        with pytest.raises(Exception) as caught:
            async for chunk in relay:
                chunks.append(chunk)
    finally:
        await backend.aclose()
    assert "upstream died" in str(caught.value)
    relayed = b"".join(chunks)
    assert relayed.count(b"data: {") >= 2  # the good frames before it went through
    assert b"upstream died" not in relayed  # the engine's own error frame did not
    assert b"[DONE]" not in relayed


async def test_relay_drops_the_usage_chunk_only_metering_asked_for(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "vllm")
    fake.default_reply = Reply(text="counted", usage=(4, 2))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    asked = {**body, "stream_options": {"include_usage": True}}
    try:
        quiet = await backend.relay(WireFormat.OPENAI, json.dumps(body).encode())
        without = b"".join([c async for c in quiet])
        loud = await backend.relay(WireFormat.OPENAI, json.dumps(asked).encode())
        with_usage = b"".join([c async for c in loud])
    finally:
        await backend.aclose()
    assert quiet.usage == loud.usage == Usage(4, 2)  # metered either way
    assert b'"choices": []' not in without and b'"choices":[]' not in without
    assert b"[DONE]" in without
    assert b'"prompt_tokens": 4' in with_usage or b'"prompt_tokens":4' in with_usage


@pytest.mark.parametrize("kind", ["vllm", "llamacpp", "openai"])
async def test_relay_dropped_stream_raises_protocol_error(fake_engine, kind: str) -> None:
    backend, fake = await backend_for(fake_engine, kind)
    fake.default_reply = Reply(text="x" * 40, drop_after_chunks=2)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    try:
        relay = await backend.relay(WireFormat.OPENAI, json.dumps(body).encode())
        with pytest.raises(ProtocolError):
            async for _ in relay:
                pass
    finally:
        await backend.aclose()


# -- models and health -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "context"),
    [("vllm", 32768), ("openrouter", 32768), ("venice", 32768), ("lmstudio", 32768)],
)
async def test_list_models_context_window(fake_engine, kind: str, context: int) -> None:
    key = "sk-test" if kind in CLOUD_KINDS else None
    fake = await fake_engine(kind, models=["m1", "m2"], api_key=key, context_window=context)
    backend = OpenAICompatBackend(kind, fake.url, api_key=key)
    try:
        found = await backend.list_models()
    finally:
        await backend.aclose()
    assert [m.id for m in found][:2] == ["m1", "m2"]
    assert all(m.context_window == context for m in found[:2])


async def test_llamacpp_context_is_the_runtime_n_ctx(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("llamacpp", models=["gemma"], context_window=2048)
    backend = OpenAICompatBackend("llamacpp", fake.url + "/v1")  # the API base is accepted too
    try:
        found = await backend.list_models()
    finally:
        await backend.aclose()
    assert len(found) == 1 and found[0].context_window == 2048
    assert any(r.path == "/props" for r in fake.requests)


async def test_health_ready_loading_and_down(fake_engine, refused_url) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("llamacpp", models=["m"], loading=True)
    backend = OpenAICompatBackend("llamacpp", fake.url)
    down = OpenAICompatBackend("llamacpp", refused_url)
    try:
        loading = await backend.health()
        fake.loading = False
        ready = await backend.health()
        gone = await down.health()
    finally:
        await backend.aclose()
        await down.aclose()
    assert (loading.alive, loading.ready) == (True, False)
    assert loading.last_error and "Loading model" in loading.last_error
    assert (ready.alive, ready.ready) == (True, True) and ready.latency_ms is not None
    assert (gone.alive, gone.ready) == (False, False) and gone.last_error


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (404, ModelNotFound),
        (429, RateLimited),
        (503, Overloaded),
    ],
)
@pytest.mark.parametrize("kind", ["vllm", "llamacpp", "openrouter", "venice", "vllm-old"])
async def test_error_statuses_map_to_classes(
    fake_engine, kind: str, status: int, error: type
) -> None:
    key = "sk-test" if kind in CLOUD_KINDS else None
    fake = await fake_engine(kind, models=["m"], api_key=key)
    fake.default_reply = Reply(status=status, error_message="model m went wrong", retry_after="7")
    profile = "vllm" if kind == "vllm-old" else kind
    backend = OpenAICompatBackend(profile, fake.url, api_key=key)
    try:
        with pytest.raises(error) as caught:
            [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()
    assert caught.value.backend_id == backend.id
    if status == 429:
        assert caught.value.retry_after == 7.0


async def test_context_overflow(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "llamacpp")
    fake.default_reply = Reply(
        status=400, error_message="the request exceeds the available context size"
    )
    try:
        with pytest.raises(ContextWindowExceeded):
            await backend.chat(request())
    finally:
        await backend.aclose()


async def test_refused_connection_is_unreachable(refused_url) -> None:  # type: ignore[no-untyped-def]
    backend = OpenAICompatBackend("vllm", refused_url)
    try:
        with pytest.raises(Unreachable):
            [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()


async def test_mid_stream_error_raises_after_partial_text(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "openrouter")
    fake.default_reply = Reply(
        text="abcdefghijklmnop", fail_after_chunks=2, error_message="provider fell over"
    )
    seen: list[object] = []
    try:
        with pytest.raises(Exception) as caught:
            async for event in backend.stream(request()):
                seen.append(event)
    finally:
        await backend.aclose()
    assert "provider fell over" in str(caught.value)
    assert [e for e in seen if isinstance(e, TextDelta)]
    assert not [e for e in seen if isinstance(e, Done)]


async def test_dropped_stream_is_protocol_error(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "vllm")
    fake.default_reply = Reply(text="abcdefghijklmnop", drop_after_chunks=2)
    try:
        with pytest.raises(ProtocolError):
            [e async for e in backend.stream(request())]
    finally:
        await backend.aclose()


@pytest.mark.parametrize("kind", CLOUD_KINDS)
async def test_cloud_profile_without_key_fails_before_io(
    fake_engine, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = await fake_engine(kind, models=["m"], api_key="sk-real")
    for env in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "VENICE_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    backend = OpenAICompatBackend(kind, fake.url)
    try:
        with pytest.raises(AuthError, match="_API_KEY"):
            [e async for e in backend.stream(request())]
        with pytest.raises(AuthError):
            await backend.list_models()
    finally:
        await backend.aclose()
    assert fake.requests == []


async def test_key_from_the_profile_env(fake_engine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("venice", models=["m"], api_key="sk-env")
    monkeypatch.setenv("VENICE_API_KEY", "sk-env")
    backend = OpenAICompatBackend("venice", fake.url)
    try:
        response = await backend.chat(request())
    finally:
        await backend.aclose()
    assert response.message.text
    assert "sk-env" not in repr(backend)


async def test_abandoned_stream_closes_the_upstream(fake_engine) -> None:  # type: ignore[no-untyped-def]
    backend, fake = await backend_for(fake_engine, "vllm")
    fake.default_reply = Reply(text="x" * 400, chunk_chars=1, delay_s=0.01)
    try:
        stream = backend.stream(request())
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        await stream.aclose()  # type: ignore[attr-defined]
        for _ in range(100):
            if fake.disconnects:
                break
            await asyncio.sleep(0.02)
    finally:
        await backend.aclose()
    assert fake.disconnects == 1


@pytest.mark.parametrize("kind", ["vllm", "llamacpp", "ollama"])
async def test_embeddings(fake_engine, kind: str) -> None:
    backend, _fake = await backend_for(fake_engine, kind)
    try:
        result = await backend.embed(EmbedRequest(model="m", inputs=("a", "b")))
    finally:
        await backend.aclose()
    assert len(result.vectors) == 2 and len(result.vectors[0]) > 0
    assert result.vectors[0] != result.vectors[1]


def test_parse_spec() -> None:
    assert parse_spec("vllm") == ("vllm", None)
    assert parse_spec("vllm:http://127.0.0.1:8000") == ("vllm", "http://127.0.0.1:8000")
    with pytest.raises(InvalidRequest, match="unknown backend kind"):
        parse_spec("nope:http://x")
    backend = connect("llamacpp")
    assert backend.id == "llamacpp:http://127.0.0.1:8080"
    assert connect("openai", api_key="k").id == "openai"


@pytest.mark.parametrize(("model", "vision"), [("qwen2-vl-2b", True), ("gemma-3-270m", False)])
async def test_llamacpp_vision_comes_from_props(fake_engine, model: str, vision: bool) -> None:
    fake = await fake_engine("llamacpp", models=[model])
    backend = OpenAICompatBackend("llamacpp", fake.url)
    try:
        found = await backend.list_models()
    finally:
        await backend.aclose()
    assert found[0].capabilities.vision is vision
    assert found[0].capabilities.tools  # the rest of the profile's capabilities stay

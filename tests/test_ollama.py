"""Ollama: the native codec (pure) and OllamaBackend against the protocol fake."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelport.backends.base import Backend
from modelport.backends.ollama import OllamaBackend, url_from_env
from modelport.errors import (
    BackendError,
    ContextWindowExceeded,
    InvalidRequest,
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
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolResult,
    Usage,
    WireFormat,
)
from modelport.wire import ollama
from modelport.wire.sse import Frame, NDJSONDecoder
from tests.fakes import Reply, fake_vector
from tests.strategies import event_streams, normalize


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def chunk(content: str = "", thinking: str | None = None, **message: Any) -> bytes:
    body: dict[str, Any] = {"role": "assistant", "content": content, **message}
    if thinking is not None:
        body["thinking"] = thinking
    return line(
        {"model": "m", "created_at": "2025-01-01T00:00:00Z", "message": body, "done": False}
    )


def done(reason: str | None = "stop", prompt: int | None = 11, output: int | None = 4) -> bytes:
    obj: dict[str, Any] = {
        "model": "m",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "total_duration": 123,
    }
    if reason is not None:
        obj["done_reason"] = reason
    if prompt is not None:
        obj["prompt_eval_count"] = prompt
    if output is not None:
        obj["eval_count"] = output
    return line(obj)


def decode(*lines: bytes) -> list[Event]:
    decoder = ollama.StreamDecoder()
    events = [e for raw in lines for e in decoder.feed(Frame(None, raw.decode()))]
    return events + decoder.close()


# -- requests ----------------------------------------------------------------------


def test_encode_full_request() -> None:
    request = ChatRequest(
        model="qwen3:8b",
        system="Be brief.",
        messages=(
            Message(
                "user",
                (Text("What is in this picture?"), Image(data="iVBORw0K", media_type="image/png")),
            ),
            Message(
                "assistant",
                (
                    Thinking("Looks like a cat."),
                    Text("Let me check."),
                    ToolCall("call_1", "lookup", {"q": "cat", "n": 2}),
                ),
            ),
            Message("tool", (ToolResult("call_1", (Text("a cat"),)),)),
        ),
        tools=(
            Tool("lookup", "Search", {"type": "object", "properties": {"q": {"type": "string"}}}),
        ),
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        stop=("\n\n", "END"),
        reasoning=Reasoning(effort="high"),
        response_format={"type": "json_object"},
        extra={"keep_alive": "10m", "seed": 7, "options": {"num_ctx": 8192}},
    )
    assert ollama.encode_chat_request(request, stream=True) == {
        "model": "qwen3:8b",
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is in this picture?", "images": ["iVBORw0K"]},
            {
                "role": "assistant",
                "content": "Let me check.",
                "thinking": "Looks like a cat.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "function": {"name": "lookup", "arguments": {"q": "cat", "n": 2}},
                    }
                ],
            },
            {"role": "tool", "content": "a cat", "tool_call_id": "call_1", "tool_name": "lookup"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "Search",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
        "think": True,  # a level only for gpt-oss
        "format": "json",
        "options": {
            "num_ctx": 8192,
            "seed": 7,
            "temperature": 0.2,
            "top_p": 0.9,
            "num_predict": 64,
            "stop": ["\n\n", "END"],
        },
        "keep_alive": "10m",
    }


def test_encode_minimal_request_has_no_optional_fields() -> None:
    body = ollama.encode_chat_request(
        ChatRequest(model="m", messages=(Message.user("hi"),)), stream=False
    )
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}


@pytest.mark.parametrize(
    ("model", "reasoning", "think"),
    [
        ("gpt-oss:20b", Reasoning(effort="low"), "low"),
        ("gpt-oss:120b", Reasoning(effort="HIGH"), "high"),
        ("gpt-oss:20b", Reasoning(effort="minimal"), True),
        ("qwen3:8b", Reasoning(effort="medium"), True),
        ("qwen3:8b", Reasoning(budget_tokens=2048), True),
        ("qwen3:8b", Reasoning(), True),
        ("qwen3:8b", Reasoning(effort="none"), False),
    ],
)
def test_think_values(model: str, reasoning: Reasoning, think: object) -> None:
    request = ChatRequest(model=model, messages=(Message.user("hi"),), reasoning=reasoning)
    assert ollama.encode_chat_request(request, stream=True)["think"] == think


def test_json_schema_becomes_format() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    request = ChatRequest(
        model="m",
        messages=(Message.user("hi"),),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema},
        },
    )
    assert ollama.encode_chat_request(request, stream=True)["format"] == schema


def test_extra_never_overrides_owned_fields_but_fills_format() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message.user("hi"),),
        extra={"model": "evil", "stream": False, "format": "json", "truncate": True},
    )
    body = ollama.encode_chat_request(request, stream=True)
    assert (body["model"], body["stream"], body["format"], body["truncate"]) == (
        "m",
        True,
        "json",
        True,
    )


def test_tool_choice_none_withholds_tools() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message.user("hi"),),
        tools=(Tool("t"),),
        tool_choice=ToolChoice("none"),
    )
    assert "tools" not in ollama.encode_chat_request(request, stream=True)


def test_tool_results_split_out_of_a_user_message_and_unknown_names_are_omitted() -> None:
    request = ChatRequest(
        model="m",
        messages=(
            Message(
                "user",
                (
                    ToolResult("call_x", (Text("42"), Image(data="AAAA", media_type="image/png"))),
                    Text("and now?"),
                ),
            ),
        ),
    )
    assert ollama.encode_chat_request(request, stream=True)["messages"] == [
        {"role": "tool", "content": "42", "tool_call_id": "call_x", "images": ["AAAA"]},
        {"role": "user", "content": "and now?"},
    ]


def test_data_url_image_is_unwrapped_and_remote_url_refused() -> None:
    inline = ChatRequest(
        model="m", messages=(Message("user", (Image(url="data:image/png;base64,QUJD"),)),)
    )
    assert ollama.encode_chat_request(inline, stream=True)["messages"][0]["images"] == ["QUJD"]
    remote = ChatRequest(
        model="m", messages=(Message("user", (Image(url="https://x.test/a.png"),)),)
    )
    with pytest.raises(Unsupported):
        ollama.encode_chat_request(remote, stream=True)


def test_embed_request() -> None:
    assert ollama.encode_embed_request(
        EmbedRequest(model="e", inputs=("a", "b"), dimensions=64)
    ) == {
        "model": "e",
        "input": ["a", "b"],
        "dimensions": 64,
    }
    assert ollama.encode_embed_request(EmbedRequest(model="e", inputs=("a",))) == {
        "model": "e",
        "input": ["a"],
    }


# -- the stream ----------------------------------------------------------------------


def test_stream_text_thinking_and_usage() -> None:
    events = decode(
        chunk("", thinking="Hm"), chunk("", thinking="m."), chunk("Hel"), chunk("lo"), done()
    )
    assert events == [
        ThinkingDelta("Hm"),
        ThinkingDelta("m."),
        TextDelta("Hel"),
        TextDelta("lo"),
        Done(FinishReason.STOP, Usage(11, 4), "stop"),
    ]


def test_stream_tool_calls_whole_with_minted_ids_and_running_index() -> None:
    call_a = {"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    call_b = {"id": "call_given", "function": {"index": 0, "name": "get_time", "arguments": {}}}
    events = decode(chunk("", tool_calls=[call_a]), chunk("", tool_calls=[call_b]), done())
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(s.index, s.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    assert [(e.index, e.name, e.arguments) for e in ends] == [
        (0, "get_weather", {"city": "Paris"}),
        (1, "get_time", {}),
    ]
    assert deltas == [ToolCallDelta(0, '{"city":"Paris"}'), ToolCallDelta(1, "{}")]
    assert starts[0].id.startswith("call_") and len(starts[0].id) == len("call_") + 32
    assert ends[0].id == starts[0].id
    assert ends[1].id == "call_given"
    assert events[-1] == Done(FinishReason.TOOL_CALLS, Usage(11, 4), "stop")


def test_minted_ids_differ() -> None:
    call = {"function": {"name": "f", "arguments": {}}}
    ids = {
        e.id
        for e in decode(chunk("", tool_calls=[call, call]), done())
        if isinstance(e, ToolCallEnd)
    }
    assert len(ids) == 2


def test_string_arguments_are_accepted_and_bad_ones_refused() -> None:
    call = {"function": {"name": "f", "arguments": '{"a": 1}'}}
    ends = [e for e in decode(chunk("", tool_calls=[call]), done()) if isinstance(e, ToolCallEnd)]
    assert ends[0].arguments == {"a": 1}
    with pytest.raises(ProtocolError):
        decode(chunk("", tool_calls=[{"function": {"name": "f", "arguments": [1]}}]))


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("load", FinishReason.STOP),
        ("unload", FinishReason.STOP),
        (None, FinishReason.STOP),  # builds before done_reason
    ],
)
def test_done_reasons(reason: str | None, finish: FinishReason) -> None:
    assert decode(done(reason))[-1] == Done(finish, Usage(11, 4), reason)


def test_length_stays_length_after_tool_calls() -> None:
    call = {"function": {"name": "f", "arguments": {}}}
    last = decode(chunk("", tool_calls=[call]), done("length"))[-1]
    assert isinstance(last, Done) and last.finish_reason is FinishReason.LENGTH


def test_usage_absent_is_none_and_partial_is_zero() -> None:
    assert decode(done(prompt=None, output=None))[-1] == Done(FinishReason.STOP, None, "stop")
    assert decode(done(prompt=None, output=3))[-1] == Done(FinishReason.STOP, Usage(0, 3), "stop")


def test_error_line_raises_classified() -> None:
    decoder = ollama.StreamDecoder()
    assert decoder.feed(Frame(None, chunk("partial").decode())) == [TextDelta("partial")]
    with pytest.raises(BackendError) as caught:
        decoder.feed(
            Frame(
                None, line({"error": "an error was encountered while running the model"}).decode()
            )
        )
    assert type(caught.value) is BackendError
    assert caught.value.message == "an error was encountered while running the model"
    assert (caught.value.status, caught.value.retryable) == (502, True)
    with pytest.raises(ContextWindowExceeded):
        decode(line({"error": "the input exceeds the context length"}))


def test_stream_without_done_is_protocol_error() -> None:
    decoder = ollama.StreamDecoder()
    decoder.feed(Frame(None, chunk("half").decode()))
    with pytest.raises(ProtocolError, match="done"):
        decoder.close()


def test_garbage_line_is_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ollama.StreamDecoder().feed(Frame(None, "{not json"))


def test_lines_after_done_are_ignored() -> None:
    assert decode(done(), chunk("late")) == [Done(FinishReason.STOP, Usage(11, 4), "stop")]


def test_fed_one_byte_at_a_time_through_the_framer() -> None:
    call = {"id": "call_1", "function": {"name": "f", "arguments": {"x": [1, "ü"]}}}
    body = chunk("", thinking="t") + chunk("héllo") + chunk("", tool_calls=[call]) + done()
    framer, decoder = NDJSONDecoder(), ollama.StreamDecoder()
    events: list[Event] = []
    for i in range(len(body)):
        for raw in framer.feed(body[i : i + 1]):
            events.extend(decoder.feed(raw))
    events.extend(e for raw in framer.close() for e in decoder.feed(raw))
    events.extend(decoder.close())
    assert events == decode(*body.splitlines(keepends=True))
    assert events[:2] == [ThinkingDelta("t"), TextDelta("héllo")]
    assert events[-2] == ToolCallEnd(0, "call_1", "f", {"x": [1, "ü"]})


def encode_stream(events: list[Event]) -> list[bytes]:
    """Canonical events as Ollama would send them: whole calls, counts on the done line."""
    lines: list[bytes] = []
    for event in events:
        if isinstance(event, ThinkingDelta):
            lines.append(chunk("", thinking=event.text))
        elif isinstance(event, TextDelta):
            lines.append(chunk(event.text))
        elif isinstance(event, ToolCallEnd):
            call = {"id": event.id, "function": {"name": event.name, "arguments": event.arguments}}
            lines.append(chunk("", tool_calls=[call]))
        elif isinstance(event, Done):
            usage = event.usage
            lines.append(
                done(
                    event.raw_reason,
                    usage.input_tokens if usage else None,
                    usage.output_tokens if usage else None,
                )
            )
    return lines


OLLAMA_REASONS = {FinishReason.STOP: "stop", FinishReason.LENGTH: "length"}


@given(event_streams(reasons=OLLAMA_REASONS, interleave=False, signatures=False))
def test_stream_round_trip(events: list[Event]) -> None:
    decoded = decode(*encode_stream(events))
    want, got = normalize(events), normalize(decoded)
    assert (got.text, got.thinking, got.tool_calls) == (want.text, want.thinking, want.tool_calls)
    expected_finish = want.finish_reason
    if want.tool_calls and expected_finish is FinishReason.STOP:
        expected_finish = FinishReason.TOOL_CALLS
    assert got.finish_reason is expected_finish
    u = want.usage
    assert got.usage == (Usage(u.input_tokens, u.output_tokens) if u else None)


# -- whole answers ---------------------------------------------------------------------


def test_decode_chat_response() -> None:
    body = json.dumps(
        {
            "model": "qwen3:8b",
            "message": {
                "role": "assistant",
                "content": "Sunny.",
                "thinking": "Check weather.",
                "tool_calls": [{"function": {"name": "w", "arguments": {"c": "Oslo"}}}],
            },
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 20,
            "eval_count": 9,
        }
    ).encode()
    response = ollama.decode_chat_response(body)
    assert response.model == "qwen3:8b"
    assert response.id
    assert response.message.text == "Sunny."
    assert response.message.thinking == "Check weather."
    [call] = response.message.tool_calls
    assert (call.name, call.arguments) == ("w", {"c": "Oslo"}) and call.id.startswith("call_")
    assert (response.finish_reason, response.usage, response.raw_reason) == (
        FinishReason.TOOL_CALLS,
        Usage(20, 9),
        "stop",
    )


def test_decode_chat_response_without_done_or_with_error() -> None:
    with pytest.raises(ProtocolError):
        ollama.decode_chat_response(b'{"model":"m","message":{"content":"x"},"done":false}')
    with pytest.raises(Overloaded):
        ollama.decode_chat_response(b'{"error":"server overloaded, please retry shortly"}')


def test_decode_embed_response() -> None:
    body = (
        b'{"model":"e","embeddings":[[0.5,-1],[2,0.25]],"total_duration":1,"prompt_eval_count":6}'
    )
    result = ollama.decode_embed_response(body)
    assert result.vectors == ((0.5, -1.0), (2.0, 0.25))
    assert (result.model, result.usage) == ("e", Usage(6, 0))
    with pytest.raises(ProtocolError):
        ollama.decode_embed_response(b'{"embedding": [1]}')


# -- errors ------------------------------------------------------------------------------


def test_decode_error_shapes() -> None:
    missing = ollama.decode_error(
        404, b'{"error":"model \'llama9\' not found"}', backend_id="ollama:x"
    )
    assert isinstance(missing, ModelNotFound)
    assert (missing.message, missing.status, missing.backend_id) == (
        "model 'llama9' not found",
        404,
        "ollama:x",
    )
    bad = ollama.decode_error(
        400, b'{"error":"registry.ollama.ai/library/x does not support tools"}'
    )
    assert isinstance(bad, InvalidRequest) and bad.message.endswith("does not support tools")
    plain = ollama.decode_error(502, b"Bad Gateway")
    assert (type(plain).__name__, plain.message, plain.retryable) == (
        "BackendError",
        "Bad Gateway",
        True,
    )
    empty = ollama.decode_error(500, b"")
    assert empty.message == "HTTP 500"
    busy = ollama.decode_error(503, b'{"error":"busy"}', headers={"Retry-After": "3"})
    assert isinstance(busy, Overloaded) and busy.retry_after == 3.0


# -- /api/show ---------------------------------------------------------------------------


SHOW = {
    "modelfile": "...",
    "details": {"family": "qwen3"},
    "model_info": {
        "general.architecture": "qwen3",
        "qwen3.context_length": 40960,
        "llama.context_length": 1,
    },
    "capabilities": ["completion", "tools", "thinking"],
}


def test_context_window_from_show() -> None:
    assert ollama.context_window_from_show(SHOW) == 40960
    assert ollama.context_window_from_show({"model_info": {"general.architecture": "bert"}}) is None
    assert ollama.context_window_from_show({}) is None


@pytest.mark.parametrize(
    ("listed", "caps"),
    [
        (
            ["completion", "tools", "thinking"],
            Capabilities(tools=True, thinking=True, json_schema=True),
        ),
        (["completion", "vision"], Capabilities(vision=True, json_schema=True)),
        (["embedding"], Capabilities(embeddings=True)),
    ],
)
def test_capabilities_from_show(listed: list[str], caps: Capabilities) -> None:
    assert ollama.capabilities_from_show({"capabilities": listed}) == caps


@given(
    st.lists(st.sampled_from(["completion", "vision", "tools", "thinking", "embedding", "insert"]))
)
def test_capabilities_follow_the_list(listed: list[str]) -> None:
    caps = ollama.capabilities_from_show({"capabilities": listed})
    assert caps.tools == ("tools" in listed) and caps.vision == ("vision" in listed)
    assert caps.thinking == ("thinking" in listed) and caps.embeddings == ("embedding" in listed)


def test_encoded_request_survives_json() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message("user", (Text("hi"), Image(data="AAAA", media_type="image/png"))),),
        tools=(Tool("t", None, {"type": "object"}),),
        stop=("x",),
        extra={"keep_alive": 0},
    )
    body = ollama.encode_chat_request(request, stream=True)
    assert msgspec.json.decode(msgspec.json.encode(body)) == body
    assert body["tools"][0]["function"]["description"] == ""


# =====================================================================================
# OllamaBackend against the protocol fake


def request(model: str = "llama3.2", **kw: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=(Message.user("hi"),), **kw)


async def backend_for(fake_engine: Any, **kw: Any) -> tuple[OllamaBackend, Any]:
    fake = await fake_engine("ollama", models=kw.pop("models", ["llama3.2"]), **kw)
    return OllamaBackend(fake.url), fake


async def test_is_a_backend_with_both_formats(fake_engine: Any) -> None:
    backend, fake = await backend_for(fake_engine)
    try:
        assert isinstance(backend, Backend)
        assert backend.kind == "ollama"
        assert backend.id == f"ollama:{fake.url}"
        assert backend.formats == {WireFormat.OPENAI, WireFormat.ANTHROPIC}
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
    assert summary == [
        ("llama3.2:latest", 8192, True, Capabilities(tools=True, json_schema=True)),
        ("qwen3:8b", 8192, True, Capabilities(tools=True, thinking=True, json_schema=True)),
        ("llava:7b", 131072, False, Capabilities(tools=True, vision=True, json_schema=True)),
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

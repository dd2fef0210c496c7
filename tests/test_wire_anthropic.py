"""Anthropic Messages codec: requests, responses, streams and errors, against exact values."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelport.errors import (
    AuthError,
    BackendError,
    Cancelled,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    TimedOut,
    Unreachable,
    Unsupported,
)
from modelport.types import (
    ChatRequest,
    ChatResponse,
    Done,
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
)
from modelport.wire import anthropic
from modelport.wire.sse import Frame, SSEDecoder
from tests.captures import CAPTURES
from tests.strategies import chat_requests, chat_responses, event_streams, normalize

CAPTURE_FILE = CAPTURES / "llamacpp_anthropic_stream.sse"

ANTHROPIC_REASONS = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
}


def sse(name: str, **payload: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **payload})}\n\n".encode()


def message_start(input_tokens: int = 3, **usage: int) -> bytes:
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage},
    }
    return sse("message_start", message=message)


def block_start(index: int, **block: Any) -> bytes:
    return sse("content_block_start", index=index, content_block=block)


def delta(index: int, **body: Any) -> bytes:
    return sse("content_block_delta", index=index, delta=body)


def block_stop(index: int) -> bytes:
    return sse("content_block_stop", index=index)


def message_end(stop_reason: str = "end_turn", **usage: int) -> bytes:
    usage = usage or {"output_tokens": 7}
    body = sse(
        "message_delta", delta={"stop_reason": stop_reason, "stop_sequence": None}, usage=usage
    )
    return body + sse("message_stop")


def frames(body: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    framer = SSEDecoder()
    return [(f.event, json.loads(f.data)) for f in [*framer.feed(body), *framer.close()]]


def physical(usage: Usage | None) -> Usage:
    """Cache reads are part of the prompt: a count with more cache reads than input is not."""
    usage = usage or Usage()
    return msgspec.structs.replace(
        usage, input_tokens=max(usage.input_tokens, usage.cache_read_tokens)
    )


# ---------------------------------------------------------------------------
# Requests


FULL_REQUEST: dict[str, Any] = {
    "model": "claude-x",
    "max_tokens": 512,
    "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?", "cache_control": {"type": "ephemeral"}},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look first.", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": 1}},
                {"type": "tool_use", "id": "toolu_2", "name": "zoom", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "blurry"}],
                    "is_error": True,
                },
                {"type": "text", "text": "And now?"},
            ],
        },
    ],
    "tools": [
        {
            "name": "look",
            "description": "Look at it",
            "input_schema": {"type": "object", "properties": {"q": {"type": "integer"}}},
        },
        {"name": "zoom", "input_schema": {"type": "object"}},
    ],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "temperature": 0.5,
    "top_p": 1,
    "stop_sequences": ["END"],
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "stream": True,
    "metadata": {"user_id": "u1"},
    "top_k": 40,
}


def test_decode_request_maps_every_field() -> None:
    req = anthropic.decode_request(json.dumps(FULL_REQUEST).encode())
    assert req == ChatRequest(
        model="claude-x",
        system="Be brief.\n\nBe kind.",
        messages=(
            Message(
                "user",
                (
                    Text("What is here?"),
                    Image(data="iVBORw0", media_type="image/png"),
                    Image(url="https://example.com/a.jpg"),
                ),
            ),
            Message(
                "assistant",
                (
                    Thinking("Look first.", "sig=="),
                    Thinking("", "redacted_thinking:opaque"),
                    Text("Checking."),
                    ToolCall("toolu_1", "look", {"q": 1}),
                    ToolCall("toolu_2", "zoom", {}),
                ),
            ),
            Message(
                "tool",
                (
                    ToolResult("toolu_1", (Text("a cat"),)),
                    ToolResult("toolu_2", (Text("blurry"),), is_error=True),
                ),
            ),
            Message("user", (Text("And now?"),)),
        ),
        tools=(
            Tool(
                "look", "Look at it", {"type": "object", "properties": {"q": {"type": "integer"}}}
            ),
            Tool("zoom", None, {}),
        ),
        tool_choice=ToolChoice("required"),
        parallel_tool_calls=False,
        max_tokens=512,
        temperature=0.5,
        top_p=1.0,
        stop=("END",),
        reasoning=Reasoning(budget_tokens=2048),
        stream=True,
        extra={"metadata": {"user_id": "u1"}, "top_k": 40},
    )


def test_decode_request_accepts_a_dict_and_string_content() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "system": "sys",
        "messages": [{"role": "user", "content": "hi"}],
    }
    req = anthropic.decode_request(body)
    assert req == ChatRequest(model="m", system="sys", max_tokens=5, messages=(Message.user("hi"),))


def test_tool_results_keep_their_place_among_user_blocks() -> None:
    content = [
        {"type": "text", "text": "before"},
        {"type": "tool_result", "tool_use_id": "a"},
        {"type": "tool_result", "tool_use_id": "b", "content": "B"},
        {"type": "text", "text": "after"},
    ]
    req = anthropic.decode_request(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
    )
    assert req.messages == (
        Message("user", (Text("before"),)),
        Message("tool", (ToolResult("a", ()), ToolResult("b", (Text("B"),)))),
        Message("user", (Text("after"),)),
    )
    assert anthropic.encode_request(req)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "before"},
                {"type": "tool_result", "tool_use_id": "a"},
                {"type": "tool_result", "tool_use_id": "b", "content": "B"},
                {"type": "text", "text": "after"},
            ],
        }
    ]


def test_tool_choices_and_thinking_kinds() -> None:
    def decode(**fields: Any) -> ChatRequest:
        return anthropic.decode_request({"model": "m", "max_tokens": 5, "messages": [], **fields})

    assert decode(tool_choice={"type": "auto"}).tool_choice == ToolChoice("auto")
    assert decode(tool_choice={"type": "none"}).tool_choice == ToolChoice("none")
    named = decode(tool_choice={"type": "tool", "name": "f", "disable_parallel_tool_use": False})
    assert (named.tool_choice, named.parallel_tool_calls) == (ToolChoice("named", "f"), True)
    adaptive = decode(thinking={"type": "adaptive"})
    assert (adaptive.reasoning, adaptive.extra) == (None, {"thinking": {"type": "adaptive"}})


def test_output_config_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    config = {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}
    req = anthropic.decode_request(
        {"model": "m", "max_tokens": 5, "messages": [], "output_config": config}
    )
    assert req.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert req.extra == {"output_config": {"effort": "low"}}
    assert anthropic.encode_request(req)["output_config"] == config


def test_count_tokens_request_needs_no_max_tokens() -> None:
    req = anthropic.decode_count_tokens_request(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    )
    assert req == ChatRequest(model="m", messages=(Message.user("hi"),))
    assert anthropic.encode_count_tokens_response(42) == b'{"input_tokens":42}'
    with pytest.raises(InvalidRequest) as caught:
        anthropic.decode_request(b'{"model": "m", "messages": []}')
    assert caught.value.param == "max_tokens"


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not DROP}


DROP = object()


def _content(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (_body(messages="bad"), "messages"),
        (_body(messages=DROP), "messages"),
        (_body(model=DROP), "model"),
        (_body(model=7), "model"),
        (_body(max_tokens=DROP), "max_tokens"),
        (_body(max_tokens="10"), "max_tokens"),
        (_body(max_tokens=True), "max_tokens"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(messages=["hi"]), "messages[0]"),
        (_body(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"role": "user"}]), "messages[0].content"),
        (_body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_body(messages=_content({"text": "x"})), "messages[0].content[0].type"),
        (_body(messages=_content({"type": "text"})), "messages[0].content[0].text"),
        (_body(messages=_content({"type": "video"})), "messages[0].content[0].type"),
        (
            _body(
                messages=_content(
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}
                )
            ),
            "messages[0].content[0].source.data",
        ),
        (
            _body(messages=_content({"type": "tool_use", "id": "t", "name": "f", "input": "{}"})),
            "messages[0].content[0].input",
        ),
        (
            _body(
                messages=_content(
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "thinking", "thinking": "x"}],
                    }
                )
            ),
            "messages[0].content[0].content[0]",
        ),
        (_body(messages=_content({"type": "tool_result"})), "messages[0].content[0].tool_use_id"),
        (_body(system=5), "system"),
        (_body(system=[{"type": "image"}]), "system[0].type"),
        (_body(tools=[{"name": "f"}]), "tools[0].input_schema"),
        (_body(tools=[{"input_schema": {}}]), "tools[0].name"),
        (_body(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (_body(tool_choice={"type": "tool"}), "tool_choice.name"),
        (
            _body(tool_choice={"type": "auto", "disable_parallel_tool_use": "yes"}),
            "tool_choice.disable_parallel_tool_use",
        ),
        (_body(temperature="hot"), "temperature"),
        (_body(top_p=False), "top_p"),
        (_body(stop_sequences="END"), "stop_sequences"),
        (_body(stop_sequences=["END", 3]), "stop_sequences[1]"),
        (_body(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (_body(stream="yes"), "stream"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        anthropic.decode_request(json.dumps(body).encode())
    assert caught.value.param == param
    assert param in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_bodies_that_are_not_objects_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        anthropic.decode_request(body)


@pytest.mark.parametrize(
    "body",
    [
        _body(messages=_content({"type": "document", "source": {}})),
        _body(messages=_content({"type": "image", "source": {"type": "file", "file_id": "f"}})),
        _body(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
    ],
)
def test_what_the_canonical_types_cannot_carry_is_unsupported(body: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        anthropic.decode_request(body)


def test_encode_request_defaults_and_folding() -> None:
    req = ChatRequest(
        model="m",
        system="Top.",
        messages=(
            Message.system("Also this."),
            Message("user", (Image(url="data:image/jpeg;base64,/9j/AAAA"), Image(data="iVBORxx"))),
            Message("assistant", (Thinking("hm"), ToolCall("c1", "f", {"a": [1]}))),
            Message("tool", (ToolResult("c1", (Text("ok"),)),)),
            Message("tool", (ToolResult("c2", ()),)),
        ),
        tools=(Tool("f"),),
        parallel_tool_calls=False,
        reasoning=Reasoning(effort="high"),
        extra={"seed": 3, "model": "ignored"},
    )
    assert anthropic.encode_request(req) == {
        "model": "m",
        "max_tokens": 4096,
        "system": "Top.\n\nAlso this.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/jpeg",
                            "data": "/9j/AAAA",
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORxx"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm"},
                    {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": [1]}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "ok"}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c2"}]},
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 4095},
        "seed": 3,
    }


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking"),
    [
        (Reasoning(effort="low"), 100_000, {"type": "enabled", "budget_tokens": 2048}),
        (Reasoning(effort="medium"), 100_000, {"type": "enabled", "budget_tokens": 8192}),
        (Reasoning(effort="none"), 100_000, None),
        (Reasoning(effort="high"), 1000, None),  # no budget of at least 1024 fits
        (
            Reasoning(budget_tokens=5000, effort="low"),
            100_000,
            {"type": "enabled", "budget_tokens": 5000},
        ),
    ],
)
def test_reasoning_becomes_a_thinking_budget(
    reasoning: Reasoning, max_tokens: int, thinking: dict[str, Any] | None
) -> None:
    req = ChatRequest(model="m", messages=(), max_tokens=max_tokens, reasoning=reasoning)
    assert anthropic.encode_request(req).get("thinking") == thinking


def test_tool_choice_none_takes_no_parallel_flag() -> None:
    req = ChatRequest(
        model="m", messages=(), tool_choice=ToolChoice("none"), parallel_tool_calls=False
    )
    assert anthropic.encode_request(req)["tool_choice"] == {"type": "none"}


def test_response_formats() -> None:
    schema = {"type": "object"}
    wanted = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    req = ChatRequest(model="m", messages=(), response_format=wanted)
    assert anthropic.encode_request(req)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
    plain = msgspec.structs.replace(req, response_format={"type": "text"})
    assert "output_config" not in anthropic.encode_request(plain)
    with pytest.raises(Unsupported):
        anthropic.encode_request(
            msgspec.structs.replace(req, response_format={"type": "json_object"})
        )


def _anthropic_form(req: ChatRequest) -> ChatRequest:
    """What Anthropic can say of a canonical request: parallel_tool_calls lives in tool_choice."""
    choice, parallel = req.tool_choice, req.parallel_tool_calls
    if choice is None and parallel is not None:
        choice = ToolChoice("auto")
    if choice is not None and choice.mode == "none":
        parallel = None
    return msgspec.structs.replace(
        req,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        max_tokens=req.max_tokens if req.max_tokens is not None else anthropic.DEFAULT_MAX_TOKENS,
    )


@given(chat_requests(reasoning="budget", tool_errors=True))
def test_request_round_trip(req: ChatRequest) -> None:
    req = msgspec.structs.replace(req, response_format=None)
    wire = msgspec.json.encode(anthropic.encode_request(req))
    assert anthropic.decode_request(wire) == _anthropic_form(req)


# ---------------------------------------------------------------------------
# Responses


def test_decode_response() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "so", "signature": "s1"},
            {"type": "text", "text": "Hello"},
            {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"x": "y"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 5,
            "output_tokens": 20,
            "output_tokens_details": {"thinking_tokens": 4},
        },
    }
    resp = anthropic.decode_response(json.dumps(body).encode())
    assert resp == ChatResponse(
        id="msg_1",
        model="claude-x",
        message=Message(
            "assistant", (Thinking("so", "s1"), Text("Hello"), ToolCall("toolu_9", "f", {"x": "y"}))
        ),
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=45, output_tokens=20, cache_read_tokens=30, reasoning_tokens=4),
        raw_reason="tool_use",
    )


def test_encode_response_shape() -> None:
    resp = ChatResponse(
        id="msg_2",
        model="m",
        message=Message("assistant", (Text("Hi"), ToolCall("c", "f", {}))),
        finish_reason=FinishReason.LENGTH,
        usage=Usage(input_tokens=26, output_tokens=12, cache_read_tokens=21),
        raw_reason="length",
    )
    assert json.loads(anthropic.encode_response(resp)) == {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "text", "text": "Hi"},
            {"type": "tool_use", "id": "c", "name": "f", "input": {}},
        ],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 5,
            "output_tokens": 12,
            "cache_read_input_tokens": 21,
            "cache_creation_input_tokens": 0,
        },
    }


def test_error_body_in_place_of_a_response_raises() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    with pytest.raises(Overloaded):
        anthropic.decode_response(body)
    with pytest.raises(ProtocolError):
        anthropic.decode_response(b"<html>")


@given(chat_responses(reasons=ANTHROPIC_REASONS))
def test_response_round_trip(resp: ChatResponse) -> None:
    resp = msgspec.structs.replace(resp, usage=physical(resp.usage))
    assert anthropic.decode_response(anthropic.encode_response(resp)) == resp


# ---------------------------------------------------------------------------
# Stream decoding


def test_real_llama_server_capture() -> None:
    decoder = anthropic.StreamDecoder()
    framer = SSEDecoder()
    events: list[Event] = []
    for frame in [*framer.feed(CAPTURE_FILE.read_bytes()), *framer.close()]:
        events.extend(decoder.feed(frame))
    events.extend(decoder.close())
    assert (
        "".join(e.text for e in events if isinstance(e, TextDelta)) == "Say hello.<|im_end|>\n<|im"
    )
    assert len(events) == 13  # 12 tokens, then Done
    assert events[-1] == Done(
        FinishReason.LENGTH,
        Usage(input_tokens=26, output_tokens=12, cache_read_tokens=21),
        "max_tokens",
    )
    assert decoder.id == "chatcmpl-oftza3QDAw0FjOCC80QrIlx6ZOgZCYS3"
    assert decoder.model == "gemma.gguf"


def test_capture_fed_one_byte_at_a_time() -> None:
    body = CAPTURE_FILE.read_bytes()
    framer = SSEDecoder()
    decoder = anthropic.StreamDecoder()
    events: list[Event] = []
    for i in range(len(body)):
        for frame in framer.feed(body[i : i + 1]):
            events.extend(decoder.feed(frame))
    for frame in framer.close():
        events.extend(decoder.feed(frame))
    assert events == anthropic.decode_stream(body)


FULL_STREAM = b"".join(
    [
        sse("ping"),
        message_start(input_tokens=10, cache_read_input_tokens=4),
        block_start(0, type="thinking", thinking=""),
        delta(0, type="thinking_delta", thinking="Let me "),
        sse("ping"),
        delta(0, type="thinking_delta", thinking="see."),
        delta(0, type="signature_delta", signature="EqQBCg=="),
        block_stop(0),
        block_start(1, type="redacted_thinking", data="xyz"),
        block_stop(1),
        block_start(2, type="text", text="Hi"),
        delta(2, type="text_delta", text=" there"),
        delta(2, type="citations_delta", citation={}),
        block_stop(2),
        sse("brand_new_event", anything=[1, 2]),
        block_start(3, type="tool_use", id="toolu_a", name="get", input={}),
        delta(3, type="input_json_delta", partial_json=""),
        delta(3, type="input_json_delta", partial_json='{"city": '),
        delta(3, type="input_json_delta", partial_json='"Oslo"}'),
        block_stop(3),
        block_start(4, type="server_tool_use", id="srv", name="web_search", input={}),
        delta(4, type="input_json_delta", partial_json='{"q": "x"}'),
        block_stop(4),
        block_start(5, type="tool_use", id="toolu_b", name="put", input={}),
        block_stop(5),
        sse("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 3}),
        sse("ping"),
        sse("message_delta", delta={}, usage={"output_tokens": 9, "input_tokens": 11}),
        sse("message_stop"),
    ]
)


def test_full_stream_decodes_to_exact_events() -> None:
    assert anthropic.decode_stream(FULL_STREAM) == [
        ThinkingDelta("Let me "),
        ThinkingDelta("see."),
        ThinkingDelta("", "EqQBCg=="),
        ThinkingDelta("", "redacted_thinking:xyz"),
        TextDelta("Hi"),
        TextDelta(" there"),
        ToolCallStart(0, "toolu_a", "get"),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(0, '"Oslo"}'),
        ToolCallEnd(0, "toolu_a", "get", {"city": "Oslo"}),
        ToolCallStart(1, "toolu_b", "put"),
        ToolCallEnd(1, "toolu_b", "put", {}),
        Done(
            FinishReason.TOOL_CALLS,
            Usage(input_tokens=15, output_tokens=9, cache_read_tokens=4),
            "tool_use",
        ),
    ]


@pytest.mark.parametrize(
    ("raw", "finish"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("pause_turn", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("model_context_window_exceeded", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("something_new", FinishReason.STOP),
        (None, FinishReason.STOP),
    ],
)
def test_every_stop_reason(raw: str | None, finish: FinishReason) -> None:
    assert anthropic.stop_reason_to_finish(raw) == finish
    stream = message_start() + sse(
        "message_delta", delta={"stop_reason": raw}, usage={"output_tokens": 2}
    )
    done = anthropic.decode_stream(stream + sse("message_stop"))[-1]
    assert done == Done(finish, Usage(input_tokens=3, output_tokens=2), raw)


def test_usage_is_cumulative_and_latest_wins() -> None:
    stream = (
        message_start(input_tokens=0)
        + sse("message_delta", delta={}, usage={"output_tokens": 5})
        + sse(
            "message_delta",
            delta={"stop_reason": "end_turn"},
            usage={"output_tokens": 9, "input_tokens": 40},
        )
        + sse("message_stop")
    )
    assert anthropic.decode_stream(stream)[-1] == Done(
        FinishReason.STOP, Usage(input_tokens=40, output_tokens=9), "end_turn"
    )


def test_tool_input_from_block_start_and_minted_id() -> None:
    stream = (
        message_start()
        + block_start(0, type="tool_use", name="f", input={"whole": True})
        + block_stop(0)
        + message_end("tool_use")
    )
    start, end, _ = anthropic.decode_stream(stream)
    assert isinstance(start, ToolCallStart) and isinstance(end, ToolCallEnd)
    assert start.id.startswith("toolu_") and len(start.id) == 30
    assert end == ToolCallEnd(0, start.id, "f", {"whole": True})


def test_tool_left_open_at_message_stop_is_closed() -> None:
    stream = (
        message_start()
        + block_start(0, type="tool_use", id="t", name="f", input={})
        + delta(0, type="input_json_delta", partial_json='{"a": 1}')
        + message_end("tool_use")
    )
    assert anthropic.decode_stream(stream)[2] == ToolCallEnd(0, "t", "f", {"a": 1})


@pytest.mark.parametrize("partial", ['{"a": ', "[1, 2]"])
def test_bad_tool_arguments_name_the_tool(partial: str) -> None:
    stream = (
        message_start()
        + block_start(0, type="tool_use", id="toolu_x", name="lookup", input={})
        + delta(0, type="input_json_delta", partial_json=partial)
        + block_stop(0)
    )
    with pytest.raises(ProtocolError, match="lookup") as caught:
        anthropic.decode_stream(stream + message_end(), backend_id="llamacpp:local")
    assert "toolu_x" in caught.value.message
    assert caught.value.backend_id == "llamacpp:local"
    assert caught.value.raw == partial


def test_arguments_for_a_block_that_is_not_a_tool() -> None:
    stream = message_start() + delta(3, type="input_json_delta", partial_json="{}")
    with pytest.raises(ProtocolError, match="block 3"):
        anthropic.decode_stream(stream + message_end())


def test_missing_message_stop_is_an_error() -> None:
    stream = (
        message_start()
        + block_start(0, type="text", text="")
        + delta(0, type="text_delta", text="Hi")
    )
    with pytest.raises(ProtocolError, match="without message_stop"):
        anthropic.decode_stream(stream)
    decoder = anthropic.StreamDecoder()
    decoder.feed(
        Frame("message_start", json.dumps({"type": "message_start", "message": {"id": "m"}}))
    )
    with pytest.raises(ProtocolError):
        decoder.close()


def test_done_marker_and_unknown_non_json_events_are_ignored() -> None:
    stream = (
        message_start() + b"event: weird\ndata: not json\n\n" + message_end() + b"data: [DONE]\n\n"
    )
    assert anthropic.decode_stream(stream) == [
        Done(FinishReason.STOP, Usage(input_tokens=3, output_tokens=7), "end_turn")
    ]


def test_invalid_json_in_a_known_event_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        anthropic.decode_stream(message_start() + b"event: content_block_delta\ndata: {oops\n\n")


def official(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_frame(payload: Any, event: str | None = "error") -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


LLAMA_BOOM = {"code": 500, "message": "boom", "type": "server_error"}
TOO_LONG = "prompt is too long: 300000 tokens > 200000 maximum"


@pytest.mark.parametrize(
    ("frame", "cls", "status"),
    [
        (error_frame(official("overloaded_error", "Overloaded")), Overloaded, 503),
        (error_frame(official("overloaded_error", "Overloaded"), None), Overloaded, 503),
        (error_frame(official("rate_limit_error", "slow down")), RateLimited, 429),
        (error_frame(official("invalid_request_error", TOO_LONG)), ContextWindowExceeded, 400),
        (error_frame(official("internal_error", "Invalid data")), BackendError, 502),
        (error_frame(official("not_found_error", "model: claude-nope")), ModelNotFound, 404),
        (error_frame(LLAMA_BOOM), BackendError, 502),
        (error_frame(LLAMA_BOOM, None), BackendError, 502),
        (
            error_frame({"code": 503, "message": "Loading model", "type": "unavailable_error"}),
            Overloaded,
            503,
        ),
        (error_frame("upstream died"), BackendError, 502),
    ],
)
def test_error_events_raise_the_right_class(
    frame: bytes, cls: type[BackendError], status: int
) -> None:
    decoder = anthropic.StreamDecoder(backend_id="anthropic")
    framer = SSEDecoder()
    for f in framer.feed(message_start()):
        decoder.feed(f)
    (f,) = framer.feed(frame)
    with pytest.raises(cls) as caught:
        decoder.feed(f)
    assert type(caught.value) is cls
    assert caught.value.status == status
    assert caught.value.backend_id == "anthropic"


def test_decode_stream_error_for_meters() -> None:
    err = anthropic.decode_stream_error(json.dumps(official("overloaded_error", "busy")))
    assert (type(err), err.message) == (Overloaded, "busy")
    bare = anthropic.decode_stream_error(
        '{"code":401,"message":"no key","type":"authentication_error"}'
    )
    assert (type(bare), bare.status) == (AuthError, 401)


# ---------------------------------------------------------------------------
# Stream encoding


def test_encoded_stream_frames() -> None:
    events: list[Event] = [
        ThinkingDelta("hm"),
        ThinkingDelta("", "sig"),
        TextDelta("Hi"),
        TextDelta("!"),
        ToolCallStart(0, "call_1", "f"),
        ToolCallEnd(0, "call_1", "f", {"x": 1}),
        Done(FinishReason.TOOL_CALLS, Usage(30, 5, 20, 2), "tool_calls"),
    ]
    body = anthropic.encode_stream(events, id="msg_9", model="m")
    assert frames(body) == [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_9",
                    "type": "message",
                    "role": "assistant",
                    "model": "m",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "sig"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "!"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"x":1}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "cache_read_input_tokens": 20,
                    "cache_creation_input_tokens": 0,
                    "output_tokens_details": {"thinking_tokens": 2},
                },
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_interleaved_parallel_calls_are_serialized_without_loss() -> None:
    events: list[Event] = [
        TextDelta("Calling."),
        ToolCallStart(0, "call_a", "a"),
        ToolCallStart(1, "call_b", "b"),
        ToolCallDelta(0, '{"p":'),
        ToolCallDelta(1, '{"q":'),
        TextDelta(" (meanwhile)"),
        ToolCallDelta(1, "2}"),
        ToolCallStart(2, "call_c", "c"),
        ToolCallDelta(0, "1}"),
        ToolCallEnd(0, "call_a", "a", {"p": 1}),
        ToolCallEnd(1, "call_b", "b", {"q": 2}),
        ToolCallEnd(2, "call_c", "c", {"r": 3}),
        Done(FinishReason.TOOL_CALLS, Usage(1, 2), "tool_calls"),
    ]
    body = anthropic.encode_stream(events, id="m", model="m")
    starts = [p["index"] for name, p in frames(body) if name == "content_block_start"]
    stops = [p["index"] for name, p in frames(body) if name == "content_block_stop"]
    assert starts == stops == [0, 1, 2, 3, 4]
    assert anthropic.decode_stream(body) == [
        TextDelta("Calling."),
        ToolCallStart(0, "call_a", "a"),
        ToolCallDelta(0, '{"p":'),
        ToolCallDelta(0, "1}"),
        ToolCallEnd(0, "call_a", "a", {"p": 1}),
        ToolCallStart(1, "call_b", "b"),
        ToolCallDelta(1, '{"q":'),
        ToolCallDelta(1, "2}"),
        ToolCallEnd(1, "call_b", "b", {"q": 2}),
        ToolCallStart(2, "call_c", "c"),
        ToolCallDelta(2, '{"r":3}'),
        ToolCallEnd(2, "call_c", "c", {"r": 3}),
        TextDelta(" (meanwhile)"),
        Done(FinishReason.TOOL_CALLS, Usage(1, 2), "tool_use"),
    ]


def test_calls_never_ended_are_flushed_at_done() -> None:
    events: list[Event] = [
        ToolCallStart(0, "a", "f"),
        ToolCallStart(1, "b", "g"),
        ToolCallDelta(1, "{}"),
        Done(FinishReason.LENGTH, Usage(1, 2), "length"),
    ]
    decoded = anthropic.decode_stream(anthropic.encode_stream(events, id="m", model="m"))
    assert decoded == [
        ToolCallStart(0, "a", "f"),
        ToolCallEnd(0, "a", "f", {}),
        ToolCallStart(1, "b", "g"),
        ToolCallDelta(1, "{}"),
        ToolCallEnd(1, "b", "g", {}),
        Done(FinishReason.LENGTH, Usage(1, 2), "max_tokens"),
    ]


@pytest.mark.parametrize(
    ("finish", "raw", "stop_reason"),
    [
        (FinishReason.STOP, "stop", "end_turn"),
        (FinishReason.STOP, None, "end_turn"),
        (FinishReason.STOP, "pause_turn", "pause_turn"),
        (FinishReason.STOP, "stop_sequence", "stop_sequence"),
        (FinishReason.STOP, "max_tokens", "end_turn"),  # the word disagrees with the reason
        (FinishReason.LENGTH, "length", "max_tokens"),
        (FinishReason.TOOL_CALLS, "tool_calls", "tool_use"),
        (FinishReason.CONTENT_FILTER, "content_filter", "refusal"),
        (FinishReason.CANCELLED, None, "end_turn"),
    ],
)
def test_done_stop_reason(finish: FinishReason, raw: str | None, stop_reason: str) -> None:
    body = anthropic.encode_stream([Done(finish, None, raw)], id="m", model="m")
    (delta_frame,) = [p for name, p in frames(body) if name == "message_delta"]
    assert delta_frame["delta"] == {"stop_reason": stop_reason, "stop_sequence": None}
    assert delta_frame["usage"] == {"output_tokens": 0}


def test_input_tokens_known_up_front_go_in_message_start() -> None:
    encoder = anthropic.StreamEncoder(id="m", model="m", input_tokens=26)
    body = encoder.encode(TextDelta("x")) + encoder.encode(
        Done(FinishReason.STOP, Usage(26, 1, 21))
    )
    assert frames(body)[0][1]["message"]["usage"] == {"input_tokens": 26, "output_tokens": 0}
    assert anthropic.decode_stream(body)[-1] == Done(
        FinishReason.STOP, Usage(26, 1, 21), "end_turn"
    )


def test_error_frame_ends_the_stream() -> None:
    encoder = anthropic.StreamEncoder(id="m", model="m")
    head = encoder.encode(TextDelta("partial"))
    tail = encoder.error(Overloaded("busy"))
    assert frames(tail) == [("error", official("overloaded_error", "busy"))]
    assert encoder.encode(Done(FinishReason.STOP)) == b""
    with pytest.raises(Overloaded):
        anthropic.decode_stream(head + tail)


def test_redacted_thinking_round_trips_through_a_stream() -> None:
    events: list[Event] = [
        ThinkingDelta("", "redacted_thinking:abc"),
        ThinkingDelta("", "redacted_thinking:def"),
        TextDelta("ok"),
        Done(FinishReason.STOP, Usage(1, 1), "end_turn"),
    ]
    body = anthropic.encode_stream(events, id="m", model="m")
    blocks = [p["content_block"] for name, p in frames(body) if name == "content_block_start"]
    assert blocks[:2] == [
        {"type": "redacted_thinking", "data": "abc"},
        {"type": "redacted_thinking", "data": "def"},
    ]
    assert anthropic.decode_stream(body) == events


def _contiguous(events: list[Event]) -> list[Event]:
    """Anthropic normal form: each call's Start, Deltas and End together, calls in order."""
    calls: dict[int, list[Event]] = {}
    out: list[Event] = []
    for event in events:
        if isinstance(event, ToolCallStart | ToolCallDelta | ToolCallEnd):
            calls.setdefault(event.index, []).append(event)
        elif isinstance(event, Done):
            out.extend(e for _, group in sorted(calls.items()) for e in group)
            out.append(event)
        else:
            out.append(event)
    return out


def _with_usage(events: list[Event]) -> list[Event]:
    done = events[-1]
    assert isinstance(done, Done)
    return [*events[:-1], msgspec.structs.replace(done, usage=physical(done.usage))]


@given(event_streams(reasons=ANTHROPIC_REASONS, interleave=False))
def test_stream_round_trip(events: list[Event]) -> None:
    events = _contiguous(_with_usage(events))
    body = anthropic.encode_stream(events, id="msg_x", model="m")
    assert anthropic.decode_stream(body) == events


@given(event_streams(reasons=ANTHROPIC_REASONS, interleave=True), st.integers(1, 64))
def test_interleaved_streams_keep_their_meaning(events: list[Event], cut: int) -> None:
    events = _with_usage(events)
    body = anthropic.encode_stream(events, id="msg_x", model="m")
    framer = SSEDecoder()
    decoder = anthropic.StreamDecoder()
    decoded: list[Event] = []
    for start in range(0, len(body), cut):  # frames split at arbitrary points
        for frame in framer.feed(body[start : start + cut]):
            decoded.extend(decoder.feed(frame))
    decoded.extend(decoder.close())
    assert normalize(decoded) == normalize(events)
    assert sorted(map(repr, decoded)) == sorted(map(repr, events))


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("status", "body", "cls", "out_status"),
    [
        (
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: bad"},
            },
            InvalidRequest,
            400,
        ),
        (
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "prompt is too long: 9 > 8"},
            },
            ContextWindowExceeded,
            400,
        ),
        (
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            },
            AuthError,
            401,
        ),
        (
            403,
            {"type": "error", "error": {"type": "permission_error", "message": "no access"}},
            AuthError,
            403,
        ),
        (
            404,
            {
                "type": "error",
                "error": {"type": "not_found_error", "message": "model: claude-nope"},
            },
            ModelNotFound,
            404,
        ),
        (
            413,
            {
                "type": "error",
                "error": {
                    "type": "request_too_large",
                    "message": "Request exceeds the maximum size",
                },
            },
            InvalidRequest,
            413,
        ),
        (
            429,
            {
                "type": "error",
                "error": {"type": "rate_limit_error", "message": "Number of requests exceeded"},
            },
            RateLimited,
            429,
        ),
        (
            500,
            {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}},
            BackendError,
            502,
        ),
        (
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            Overloaded,
            503,
        ),
        (
            404,
            {
                "type": "error",
                "error": {"type": "NotFoundError", "message": "The model `x` does not exist."},
            },
            ModelNotFound,
            404,
        ),
        (
            503,
            {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
            Overloaded,
            503,
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "request exceeds the available context size",
                    "type": "exceed_context_size_error",
                }
            },
            ContextWindowExceeded,
            400,
        ),
        (
            400,
            {"code": 400, "message": "bad field", "type": "invalid_request_error"},
            InvalidRequest,
            400,
        ),
        (
            400,
            {"object": "error", "message": "bad", "type": "BadRequestError", "code": 400},
            InvalidRequest,
            400,
        ),
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            AuthError,
            401,
        ),
        (402, {"error": "Insufficient balance"}, AuthError, 402),
    ],
)
def test_decode_error_bodies(
    status: int, body: dict[str, Any], cls: type[BackendError], out_status: int
) -> None:
    raw = json.dumps(body).encode()
    err = anthropic.decode_error(status, raw, backend_id="b1")
    assert type(err) is cls
    assert err.status == out_status
    assert err.backend_id == "b1"
    assert err.raw == raw.decode()


def test_a_404_about_no_model_is_not_model_not_found() -> None:
    body = b'{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}'
    err = anthropic.decode_error(404, body)
    assert (type(err), err.status) == (BackendError, 404)


def test_error_messages_come_from_the_body() -> None:
    err = anthropic.decode_error(
        404, b'{"type":"error","error":{"type":"not_found_error","message":"model: x"}}'
    )
    assert err.message == "model: x"
    assert anthropic.decode_error(400, b'{"error": "plain words"}').message == "plain words"


def test_retry_after_header() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}'
    err = anthropic.decode_error(429, body, headers={"retry-after": "7"})
    assert isinstance(err, RateLimited)
    assert err.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (502, b"<html>Bad Gateway</html>", BackendError, "<html>Bad Gateway</html>"),
        (503, b"", Overloaded, "HTTP 503"),
        (
            422,
            b'{"detail": [{"loc": ["body"], "msg": "field required"}]}',
            InvalidRequest,
            '[{"loc":["body"],"msg":"field required"}]',
        ),
    ],
)
def test_odd_error_bodies(status: int, body: bytes, cls: type[BackendError], message: str) -> None:
    err = anthropic.decode_error(status, body)
    assert type(err) is cls
    assert err.message == message


@pytest.mark.parametrize(
    ("err", "kind", "status"),
    [
        (InvalidRequest("bad"), "invalid_request_error", 400),
        (InvalidRequest("huge", status=413), "request_too_large", 413),
        (ContextWindowExceeded("long"), "invalid_request_error", 400),
        (Unsupported("no"), "invalid_request_error", 400),
        (AuthError("who"), "authentication_error", 401),
        (AuthError("forbidden", status=403), "permission_error", 403),
        (AuthError("pay", status=402), "billing_error", 402),
        (ModelNotFound("gone"), "not_found_error", 404),
        (RateLimited("slow"), "rate_limit_error", 429),
        (Overloaded("busy"), "overloaded_error", 529),
        (TimedOut("late"), "timeout_error", 504),
        (Unreachable("down"), "api_error", 502),
        (ProtocolError("garbled"), "api_error", 502),
        (Cancelled("bye"), "api_error", 499),
        (BackendError("odd"), "api_error", 502),
    ],
)
def test_encode_error(err: BackendError, kind: str, status: int) -> None:
    assert json.loads(anthropic.encode_error(err)) == {
        "type": "error",
        "error": {"type": kind, "message": err.message},
    }
    assert anthropic.http_status(err) == status


@pytest.mark.parametrize(
    "err",
    [
        InvalidRequest("bad"),
        AuthError("who"),
        AuthError("forbidden", status=403),
        ModelNotFound("model gone"),
        RateLimited("slow"),
        Overloaded("busy"),
        InvalidRequest("huge", status=413),
    ],
)
def test_errors_survive_their_own_wire(err: BackendError) -> None:
    back = anthropic.decode_error(anthropic.http_status(err), anthropic.encode_error(err))
    assert type(back) is type(err)
    assert back.status == err.status
    assert back.message == err.message


def test_upstream_raw_body_never_goes_out() -> None:
    err = anthropic.decode_error(
        401, b'{"error": {"message": "bad key sk-secret-123"}, "key": "sk-secret-123"}'
    )
    err.message = "authentication failed"
    assert b"sk-secret" not in anthropic.encode_error(err)

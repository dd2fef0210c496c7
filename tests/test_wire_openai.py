"""OpenAI codec: round trips, real llama-server bytes, every engine quirk in docs/wire.md."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings

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
    EmbedRequest,
    EmbedResult,
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
from modelport.wire import openai
from modelport.wire.sse import Frame, SSEDecoder
from tests.captures import CAPTURES
from tests.strategies import chat_requests, chat_responses, event_streams, normalize

STREAM_CAPTURE = CAPTURES / "llamacpp_openai_stream.sse"
RESPONSE_CAPTURE = CAPTURES / "llamacpp_openai_response.json"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> str:
    """One stream chunk as an engine would send it."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return json.dumps({"id": "chatcmpl-1", "model": "m", "choices": choices, **top})


def feed_all(payloads: list[str]) -> list[Event]:
    decoder = openai.StreamDecoder()
    events: list[Event] = []
    for payload in payloads:
        events += decoder.feed(Frame(None, payload))
    return events + decoder.close()


def sse(*payloads: str) -> bytes:
    return b"".join(f"data: {p}\n\n".encode() for p in payloads)


def bytewise_events(body: bytes) -> list[Event]:
    framer = SSEDecoder()
    decoder = openai.StreamDecoder()
    events: list[Event] = []
    for i in range(len(body)):
        for frame in framer.feed(body[i : i + 1]):
            events += decoder.feed(frame)
    for frame in framer.close():
        events += decoder.feed(frame)
    return events + decoder.close()


def frames_json(body: bytes) -> list[Any]:
    framer = SSEDecoder()
    frames = framer.feed(body) + framer.close()
    return [f.data if f.data == "[DONE]" else json.loads(f.data) for f in frames]


# ---------------------------------------------------------------------------
# Round trips


@settings(max_examples=200)
@given(chat_requests())
def test_request_round_trip(req: ChatRequest):
    assert openai.decode_request(openai.encode_request(req)) == req
    assert openai.decode_request(msgspec.json.encode(openai.encode_request(req))) == req


@settings(max_examples=200)
@given(chat_responses())
def test_response_round_trip(resp: ChatResponse):
    assert openai.decode_response(openai.encode_response(resp, created=1)) == resp


@settings(max_examples=200)
@given(event_streams())
def test_event_stream_round_trip(events: list[Event]):
    body = openai.encode_stream(events, id="chatcmpl-x", model="m")
    assert openai.decode_stream(body) == events


@settings(max_examples=50)
@given(event_streams())
def test_event_stream_round_trip_bytewise(events: list[Event]):
    body = openai.encode_stream(events, id="chatcmpl-x", model="m")
    assert bytewise_events(body) == events


@given(event_streams(interleave=False, reasons={FinishReason.STOP: "end_turn"}))
def test_blockwise_stream_keeps_its_meaning(events: list[Event]):
    """Anthropic-shaped streams: same meaning after OpenAI framing, raw word mapped."""
    decoded = openai.decode_stream(openai.encode_stream(events, id="x", model="m"))
    assert normalize(decoded) == normalize(events)
    assert decoded[-1] == Done(FinishReason.STOP, normalize(events).usage, "stop")


# ---------------------------------------------------------------------------
# Real llama-server bytes


def test_llamacpp_stream_capture():
    events = openai.decode_stream(STREAM_CAPTURE.read_bytes())
    assert events[:3] == [TextDelta("Say"), TextDelta(" hello"), TextDelta(".<")]
    assert len(events) == 13
    assert normalize(events).text == "Say hello.<|im_end|>\n<|im"
    assert events[-1] == Done(
        FinishReason.LENGTH,
        Usage(input_tokens=26, output_tokens=12, cache_read_tokens=0),
        "length",
    )


def test_llamacpp_stream_capture_bytewise_and_ids():
    body = STREAM_CAPTURE.read_bytes()
    assert bytewise_events(body) == openai.decode_stream(body)
    decoder = openai.StreamDecoder()
    for frame in SSEDecoder().feed(body):
        decoder.feed(frame)
    assert decoder.id == "chatcmpl-w6OKMY3utnYkArUwpEhkLMROchb3ANzc"
    assert decoder.model == "gemma.gguf"


def test_llamacpp_response_capture():
    resp = openai.decode_response(RESPONSE_CAPTURE.read_bytes())
    assert resp == ChatResponse(
        id="chatcmpl-0AtvIizI1rdhqS2GkWFjBAHVkeVZszV9",
        model="gemma.gguf",
        message=Message.assistant("Say hello.<|im_end|>\n<|im"),
        finish_reason=FinishReason.LENGTH,
        usage=Usage(input_tokens=26, output_tokens=12, cache_read_tokens=21),
        raw_reason="length",
    )


def test_response_capture_as_dict_gives_the_same():
    body = json.loads(RESPONSE_CAPTURE.read_bytes())
    assert openai.decode_response(body) == openai.decode_response(RESPONSE_CAPTURE.read_bytes())


# ---------------------------------------------------------------------------
# Stream decoding: tool calls


def test_tool_call_fragments_openai_style():
    payloads = [
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    ]
    assert feed_all(payloads) == [
        ToolCallStart(0, "call_abc", "get_weather"),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallEnd(0, "call_abc", "get_weather", {"city": "Paris"}),
        Done(FinishReason.TOOL_CALLS, None, "tool_calls"),
    ]


def test_whole_tool_call_in_one_chunk_ollama_style():
    call = {
        "index": 0,
        "id": "call_x1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    payloads = [
        chunk({"role": "assistant", "content": "", "tool_calls": [call]}),
        chunk({}, "stop"),
    ]
    assert feed_all(payloads) == [
        ToolCallStart(0, "call_x1", "get_weather"),
        ToolCallDelta(0, '{"city":"Paris"}'),
        ToolCallEnd(0, "call_x1", "get_weather", {"city": "Paris"}),
        Done(FinishReason.STOP, None, "stop"),
    ]


def test_tool_call_without_id_gets_one_minted():
    call = {"index": 0, "function": {"name": "ping", "arguments": "{}"}}
    events = feed_all([chunk({"tool_calls": [call]}, "tool_calls")])
    start, end = events[0], events[2]
    assert isinstance(start, ToolCallStart) and isinstance(end, ToolCallEnd)
    assert start.id.startswith("call_") and len(start.id) == len("call_") + 24
    assert end.id == start.id
    assert end.arguments == {}


def test_parallel_tool_calls_interleaved():
    def frag(index: int, args: str, **first: Any) -> dict[str, Any]:
        call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
        if first:
            call.update(id=first["id"], type="function")
            call["function"]["name"] = first["name"]
        return call

    payloads = [
        chunk({"tool_calls": [frag(0, "", id="call_a", name="a")]}),
        chunk({"tool_calls": [frag(1, '{"y":', id="call_b", name="b")]}),
        chunk({"tool_calls": [frag(0, '{"x": 1}')]}),
        chunk({"tool_calls": [frag(1, " 2}")]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    ]
    assert feed_all(payloads) == [
        ToolCallStart(0, "call_a", "a"),
        ToolCallStart(1, "call_b", "b"),
        ToolCallDelta(1, '{"y":'),
        ToolCallDelta(0, '{"x": 1}'),
        ToolCallDelta(1, " 2}"),
        ToolCallEnd(0, "call_a", "a", {"x": 1}),
        ToolCallEnd(1, "call_b", "b", {"y": 2}),
        Done(FinishReason.TOOL_CALLS, None, "tool_calls"),
    ]


def test_tool_call_name_arriving_late_delays_the_start():
    payloads = [
        chunk({"tool_calls": [{"index": 0, "id": "call_q", "function": {"arguments": "{"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "q", "arguments": "}"}}]}),
        chunk({}, "tool_calls"),
    ]
    assert feed_all(payloads) == [
        ToolCallStart(0, "call_q", "q"),
        ToolCallDelta(0, "{}"),
        ToolCallEnd(0, "call_q", "q", {}),
        Done(FinishReason.TOOL_CALLS, None, "tool_calls"),
    ]


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]"])
def test_bad_tool_arguments_raise_protocol_error_naming_the_tool(arguments: str):
    call = {"index": 0, "id": "c", "function": {"name": "get_weather", "arguments": arguments}}
    decoder = openai.StreamDecoder()
    decoder.feed(Frame(None, chunk({"tool_calls": [call]})))
    with pytest.raises(ProtocolError, match="get_weather"):
        decoder.feed(Frame(None, chunk({}, "tool_calls")))


# ---------------------------------------------------------------------------
# Stream decoding: thinking, usage, finish


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_fields(field: str):
    payloads = [chunk({field: "let me think"}), chunk({"content": "hi"}), chunk({}, "stop")]
    assert feed_all(payloads) == [
        ThinkingDelta("let me think"),
        TextDelta("hi"),
        Done(FinishReason.STOP, None, "stop"),
    ]


def test_both_reasoning_fields_give_one_delta():
    events = feed_all([chunk({"reasoning": "x", "reasoning_content": "x"}), chunk({}, "stop")])
    assert events[0] == ThinkingDelta("x")
    assert len(events) == 2


def test_empty_and_null_content_emit_nothing():
    payloads = [chunk({"role": "assistant", "content": None}), chunk({"content": ""})]
    assert feed_all([*payloads, chunk({}, "stop")]) == [Done(FinishReason.STOP, None, "stop")]


def test_usage_on_a_later_chunk_with_no_choices():
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    payloads = [chunk({"content": "a"}), chunk({}, "stop"), chunk(None, usage=usage), "[DONE]"]
    assert feed_all(payloads)[-1] == Done(
        FinishReason.STOP, Usage(10, 5, cache_read_tokens=4, reasoning_tokens=3), "stop"
    )


def test_usage_on_the_finish_chunk():
    usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    events = feed_all([chunk({"content": "a"}, "length", usage=usage)])
    assert events == [TextDelta("a"), Done(FinishReason.LENGTH, Usage(7, 2), "length")]


def test_continuous_usage_keeps_the_last():
    def usage(n: int) -> dict[str, int]:
        return {"prompt_tokens": 9, "completion_tokens": n, "total_tokens": 9 + n}

    payloads = [
        chunk({"content": "a"}, usage=usage(1)),
        chunk({"content": "b"}, usage=usage(2)),
        chunk({}, "stop", usage=usage(3)),
        "[DONE]",
    ]
    assert feed_all(payloads)[-1] == Done(FinishReason.STOP, Usage(9, 3), "stop")


def test_done_is_emitted_once_and_later_data_ignored():
    decoder = openai.StreamDecoder()
    assert decoder.feed(Frame(None, chunk({"content": "a"}))) == [TextDelta("a")]
    assert decoder.feed(Frame(None, chunk({}, "stop"))) == []
    assert decoder.feed(Frame(None, "[DONE]")) == [Done(FinishReason.STOP, None, "stop")]
    assert decoder.feed(Frame(None, chunk({"content": "late"}))) == []
    assert decoder.feed(Frame(None, "not json at all")) == []
    assert decoder.close() == []


def test_finish_without_done_marker_completes_at_close():
    decoder = openai.StreamDecoder()
    decoder.feed(Frame(None, chunk({"content": "a"}, "content_filter")))
    assert decoder.close() == [Done(FinishReason.CONTENT_FILTER, None, "content_filter")]


def test_missing_finish_raises_protocol_error():
    decoder = openai.StreamDecoder()
    decoder.feed(Frame(None, chunk({"content": "cut off"})))
    with pytest.raises(ProtocolError, match="ended without a finish"):
        decoder.close()


def test_done_marker_without_finish_raises_protocol_error():
    decoder = openai.StreamDecoder()
    decoder.feed(Frame(None, chunk({"content": "a"})))
    with pytest.raises(ProtocolError):
        decoder.feed(Frame(None, "[DONE]"))


def test_unreadable_chunk_raises_protocol_error_and_blank_data_is_ignored():
    decoder = openai.StreamDecoder()
    assert decoder.feed(Frame(None, "")) == []
    with pytest.raises(ProtocolError, match="unreadable"):
        decoder.feed(Frame(None, "{not json"))
    with pytest.raises(ProtocolError):
        decoder.feed(Frame(None, '{"choices": "nope"}'))


def test_comment_lines_are_skipped():
    body = b": OPENROUTER PROCESSING\n\n" + sse(chunk({"reasoning": "hm"}), chunk({}, "stop"))
    assert openai.decode_stream(body) == [
        ThinkingDelta("hm"),
        Done(FinishReason.STOP, None, "stop"),
    ]


@pytest.mark.parametrize(
    ("error", "cls", "status"),
    [
        ({"code": 429, "message": "Rate limit exceeded", "metadata": {}}, RateLimited, 429),
        (
            {
                "code": 400,
                "message": "the request exceeds the available context size",
                "type": "exceed_context_size_error",
            },
            ContextWindowExceeded,
            400,
        ),
        ({"message": "Loading model", "type": "unavailable_error"}, Overloaded, 503),
        (
            {"message": "boom", "type": "server_error", "param": None, "code": None},
            BackendError,
            502,
        ),
        ("model runner crashed", BackendError, 502),
    ],
)
def test_mid_stream_error_raises_the_classified_error(
    error: Any, cls: type[BackendError], status: int
):
    body = sse(chunk({"content": "partial"}), json.dumps({"error": error}))
    with pytest.raises(BackendError) as info:
        openai.decode_stream(body)
    assert type(info.value) is cls
    assert info.value.status == status
    message = error if isinstance(error, str) else error["message"]
    assert info.value.message == message


# ---------------------------------------------------------------------------
# Stream encoding


def test_stream_encoder_frames():
    encoder = openai.StreamEncoder(id="chatcmpl-9", model="m", created=5)
    body = b"".join(
        encoder.encode(e)
        for e in [
            TextDelta("Hi"),
            ToolCallStart(0, "call_1", "f"),
            ToolCallDelta(0, '{"a":1}'),
            ToolCallEnd(0, "call_1", "f", {"a": 1}),
            Done(FinishReason.TOOL_CALLS, Usage(3, 4, reasoning_tokens=1), "tool_calls"),
        ]
    )
    frames = frames_json(body)
    head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 5, "model": "m"}

    def delta(d: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **head,
            "choices": [{"index": 0, "delta": d, "finish_reason": finish, "logprobs": None}],
        }

    function = {"name": "f", "arguments": ""}
    assert frames == [
        delta({"role": "assistant", "content": ""}),
        delta({"content": "Hi"}),
        delta(
            {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": function}]}
        ),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}),
        delta({}, "tool_calls"),
        {
            **head,
            "choices": [],
            "usage": {
                "prompt_tokens": 3,
                "completion_tokens": 4,
                "total_tokens": 7,
                "completion_tokens_details": {"reasoning_tokens": 1},
            },
        },
        "[DONE]",
    ]


def test_stream_encoder_sends_whole_arguments_when_no_delta_carried_them():
    events: list[Event] = [
        ToolCallStart(0, "call_1", "f"),
        ToolCallEnd(0, "call_1", "f", {"a": [1, 2]}),
        Done(FinishReason.TOOL_CALLS, None, "tool_calls"),
    ]
    decoded = openai.decode_stream(openai.encode_stream(events, id="x", model="m"))
    assert decoded == [
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, '{"a":[1,2]}'),
        ToolCallEnd(0, "call_1", "f", {"a": [1, 2]}),
        Done(FinishReason.TOOL_CALLS, None, "tool_calls"),
    ]


def test_stream_encoder_numbers_tool_calls_from_zero():
    """Anthropic numbers content blocks; OpenAI clients expect tool indices 0, 1, ..."""
    events: list[Event] = [
        TextDelta("ok"),
        ToolCallStart(1, "toolu_1", "f"),
        ToolCallDelta(1, "{}"),
        ToolCallEnd(1, "toolu_1", "f", {}),
        ToolCallStart(2, "toolu_2", "g"),
        ToolCallEnd(2, "toolu_2", "g", {"b": True}),
        Done(FinishReason.TOOL_CALLS, None, "tool_use"),
    ]
    decoded = openai.decode_stream(openai.encode_stream(events, id="x", model="m"))
    assert [(e.index, e.id) for e in decoded if isinstance(e, ToolCallEnd)] == [
        (0, "toolu_1"),
        (1, "toolu_2"),
    ]
    assert decoded[-1] == Done(FinishReason.TOOL_CALLS, None, "tool_calls")


def test_thinking_signature_survives_the_stream():
    events: list[Event] = [
        ThinkingDelta("hmm"),
        ThinkingDelta("", signature="sig=="),
        TextDelta("ok"),
        Done(FinishReason.STOP, None, "stop"),
    ]
    body = openai.encode_stream(events, id="x", model="m")
    assert b'"reasoning_signature":"sig=="' in body
    assert openai.decode_stream(body) == events


def test_stream_encoder_error_frame_ends_the_stream():
    encoder = openai.StreamEncoder(id="x", model="m", created=1)
    first = encoder.encode(TextDelta("a"))
    error = encoder.error(RateLimited("slow down", retry_after=2.0))
    assert error == (
        b'data: {"error":{"message":"slow down","type":"rate_limit_error",'
        b'"param":null,"code":"rate_limit_exceeded"}}\n\n'
    )
    assert encoder.encode(Done(FinishReason.STOP)) == b""
    with pytest.raises(RateLimited):
        openai.decode_stream(first + error)


def test_stream_encoder_without_usage():
    encoder = openai.StreamEncoder(id="x", model="m", include_usage=False)
    body = encoder.encode(Done(FinishReason.LENGTH, Usage(1, 1), "length"))
    assert b'"usage"' not in body
    assert body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize(
    ("reason", "raw", "word"),
    [
        (FinishReason.STOP, "end_turn", "stop"),
        (FinishReason.TOOL_CALLS, "stop", "tool_calls"),
        (FinishReason.CANCELLED, None, "stop"),
        (FinishReason.LENGTH, "length", "length"),
        (FinishReason.TOOL_CALLS, "function_call", "tool_calls"),
    ],
)
def test_finish_word_keeps_raw_only_when_it_agrees(
    reason: FinishReason, raw: str | None, word: str
):
    body = openai.encode_stream([Done(reason, None, raw)], id="x", model="m")
    assert frames_json(body)[-2]["choices"][0]["finish_reason"] == word


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("function_call", FinishReason.TOOL_CALLS),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("eos", FinishReason.STOP),
        (None, FinishReason.STOP),
    ],
)
def test_finish_reason_from(raw: str | None, reason: FinishReason):
    assert openai.finish_reason_from(raw) is reason


# ---------------------------------------------------------------------------
# Requests


def test_decode_request_full():
    body = {
        "model": "qwen3",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/a.jpg", "detail": "low"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning": "need weather",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "time", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "noon"}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Forecast",
                    "parameters": {"type": "object"},
                },
            },
            {"type": "function", "function": {"name": "time"}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": False,
        "max_completion_tokens": 64,
        "temperature": 1,
        "top_p": 0.5,
        "stop": "END",
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 7,
        "venice_parameters": {"include_venice_system_prompt": False},
    }
    assert openai.decode_request(json.dumps(body).encode()) == ChatRequest(
        model="qwen3",
        system="Be brief.\n\nUse tools.",
        messages=(
            Message(
                "user",
                (
                    Text("What is this?"),
                    Image(data="iVBORw==", media_type="image/png"),
                    Image(url="https://x.test/a.jpg"),
                ),
            ),
            Message(
                "assistant",
                (
                    Thinking("need weather"),
                    ToolCall("call_1", "weather", {"city": "Oslo"}),
                    ToolCall("call_2", "time", {}),
                ),
            ),
            Message(
                "tool",
                (ToolResult("call_1", (Text("rain"),)), ToolResult("call_2", (Text("noon"),))),
            ),
        ),
        tools=(Tool("weather", "Forecast", {"type": "object"}), Tool("time")),
        tool_choice=ToolChoice("named", "weather"),
        parallel_tool_calls=False,
        max_tokens=64,
        temperature=1.0,
        top_p=0.5,
        stop=("END",),
        response_format={"type": "json_object"},
        reasoning=Reasoning(effort="low"),
        stream=True,
        extra={"seed": 7, "venice_parameters": {"include_venice_system_prompt": False}},
    )


def test_encode_request_shape():
    req = ChatRequest(
        model="m",
        system="sys",
        messages=(
            Message.user("hi"),
            Message("assistant", (Thinking("t", "sig"), ToolCall("call_1", "f", {"a": 1}))),
            Message("tool", (ToolResult("call_1", (Text("r"),)),)),
        ),
        tools=(Tool("f"),),
        tool_choice=ToolChoice("required"),
        max_tokens=10,
        stop=("x",),
        reasoning=Reasoning(budget_tokens=20_000),
        extra={"seed": 1, "model": "ignored"},
    )
    assert openai.encode_request(req) == {
        "seed": 1,
        "model": "m",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "t",
                "reasoning_signature": "sig",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "r"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "required",
        "max_tokens": 10,
        "stop": ["x"],
        "reasoning_effort": "high",
        "stream": False,
    }


def test_encode_request_splits_mixed_user_message():
    """An Anthropic user turn holding tool results and text becomes tool + user messages."""
    req = ChatRequest(
        model="m",
        messages=(
            Message("user", (ToolResult("c1", (Text("42"),), is_error=True), Text("thanks"))),
        ),
    )
    assert openai.encode_request(req)["messages"] == [
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "user", "content": "thanks"},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": "bad"}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "", "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": 3, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}],
            },
            "messages[0].content[0].text",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}],
            },
            "messages[0].tool_calls[0].id",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"},
            "tool_choice",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": {"type": "function"},
            },
            "tool_choice.function.name",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": {}}, "tools"),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search"}],
            },
            "tools[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"function": {}}],
            },
            "tools[0].function.name",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"},
            "max_tokens",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": True},
            "temperature",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str):
    with pytest.raises(InvalidRequest) as info:
        openai.decode_request(body)
    assert info.value.param == param
    assert param.split(".")[-1].split("[")[0] in info.value.message
    assert info.value.status == 400


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_request_body_must_be_a_json_object(body: bytes):
    with pytest.raises(InvalidRequest):
        openai.decode_request(body)


def test_request_nulls_mean_absent_and_empty_tools_mean_none():
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [],
        "temperature": None,
        "stop": None,
        "stream": None,
        "max_tokens": 5,
    }
    assert openai.decode_request(body) == ChatRequest(
        model="m", messages=(Message.user("x"),), max_tokens=5
    )


def test_assistant_content_parts_and_arguments_object_are_accepted():
    body = {
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"k": 1}}}],
            }
        ],
    }
    assert openai.decode_request(body).messages == (
        Message("assistant", (Text("a"), Text("no"), ToolCall("c", "f", {"k": 1}))),
    )


def test_image_data_url_without_media_type_round_trips():
    req = ChatRequest(model="m", messages=(Message("user", (Image(data="AAAA"),)),))
    encoded = openai.encode_request(req)
    assert encoded["messages"][0]["content"][0]["image_url"]["url"] == "data:;base64,AAAA"
    assert openai.decode_request(encoded) == req


# ---------------------------------------------------------------------------
# Responses


def test_encode_response_shape():
    resp = ChatResponse(
        id="chatcmpl-1",
        model="m",
        message=Message(
            "assistant", (Thinking("why"), Text("yes"), ToolCall("call_1", "f", {"x": "y"}))
        ),
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(10, 20, cache_read_tokens=5),
        raw_reason="tool_use",
    )
    assert json.loads(openai.encode_response(resp, created=99)) == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 99,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "yes",
                    "reasoning_content": "why",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x":"y"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 20,
            "total_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 5},
        },
    }


def test_decode_response_variants():
    body = {
        "id": "r",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "",
                    "reasoning": "hm",
                    "tool_calls": [
                        {"type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    resp = openai.decode_response(body)
    thinking, call = resp.message.content
    assert thinking == Thinking("hm")
    assert isinstance(call, ToolCall) and call.id.startswith("call_") and call.name == "f"
    assert resp.usage is None
    assert resp.finish_reason is FinishReason.TOOL_CALLS


def test_decode_response_error_body_raises():
    with pytest.raises(ModelNotFound):
        openai.decode_response(b'{"error": {"code": 404, "message": "model \'x\' not found"}}')


@pytest.mark.parametrize("body", [b"{", b'{"choices": []}', b'{"choices": [{"index": 0}]}'])
def test_decode_response_unreadable_raises_protocol_error(body: bytes):
    with pytest.raises(ProtocolError):
        openai.decode_response(body)


# ---------------------------------------------------------------------------
# Errors in


def decode(status: int, body: Any, headers: dict[str, str] | None = None) -> BackendError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return openai.decode_error(status, raw, backend_id="b", headers=headers)


@pytest.mark.parametrize(
    ("status", "body", "cls", "out_status", "message"),
    [
        (
            401,
            {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}},
            AuthError,
            401,
            "Invalid API Key",
        ),
        (
            404,
            {
                "error": {
                    "message": "The model `x` does not exist.",
                    "type": "NotFoundError",
                    "param": None,
                    "code": 404,
                }
            },
            ModelNotFound,
            404,
            "The model `x` does not exist.",
        ),
        (
            404,
            {
                "error": {
                    "message": "model 'x' not found",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
            ModelNotFound,
            404,
            "model 'x' not found",
        ),
        (
            400,
            {
                "error": {
                    "message": "No models loaded. Please load a model first.",
                    "type": "invalid_request_error",
                }
            },
            ModelNotFound,
            404,
            "No models loaded. Please load a model first.",
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                }
            },
            ContextWindowExceeded,
            400,
            "the request exceeds the available context size, try increasing it",
        ),
        (
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens.",
                "type": "BadRequestError",
                "code": 400,
            },
            ContextWindowExceeded,
            400,
            "This model's maximum context length is 4096 tokens.",
        ),
        (
            503,
            {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
            Overloaded,
            503,
            "Loading model",
        ),
        (
            400,
            {"error": "Invalid request: temperature out of range"},
            InvalidRequest,
            400,
            "Invalid request: temperature out of range",
        ),
        (401, {"error": "Authentication failed"}, AuthError, 401, "Authentication failed"),
        (
            402,
            {"error": {"code": 402, "message": "Insufficient credits", "metadata": {}}},
            AuthError,
            402,
            "Insufficient credits",
        ),
        (
            529,
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
                "request_id": "r",
            },
            Overloaded,
            503,
            "Overloaded",
        ),
        (500, b"Internal Server Error", BackendError, 502, "Internal Server Error"),
        (502, b"", BackendError, 502, "HTTP 502"),
        (504, b"<html>gateway timeout</html>", TimedOut, 504, "<html>gateway timeout</html>"),
    ],
)
def test_decode_error_shapes(
    status: int, body: Any, cls: type[BackendError], out_status: int, message: str
):
    err = decode(status, body)
    assert type(err) is cls
    assert err.status == out_status
    assert err.message == message
    assert err.backend_id == "b"
    assert err.raw is not None or body == b""


def test_decode_error_rate_limit_retry_after():
    err = decode(
        429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, {"Retry-After": "7"}
    )
    assert isinstance(err, RateLimited)
    assert err.retry_after == 7.0
    assert err.retryable is True


def test_decode_error_keeps_param():
    body = {
        "error": {
            "message": "bad",
            "type": "invalid_request_error",
            "param": "messages[0]",
            "code": None,
        }
    }
    err = decode(400, body)
    assert isinstance(err, InvalidRequest) and err.param == "messages[0]"


def test_decode_error_cuts_raw_body():
    err = decode(500, b"x" * 10_000)
    assert err.raw is not None and len(err.raw) == 4096


# ---------------------------------------------------------------------------
# Errors out


@pytest.mark.parametrize(
    ("err", "kind", "code"),
    [
        (InvalidRequest("bad", param="messages"), "invalid_request_error", None),
        (AuthError("no key"), "authentication_error", "invalid_api_key"),
        (AuthError("pay up", status=402), "authentication_error", "insufficient_quota"),
        (ModelNotFound("no model"), "invalid_request_error", "model_not_found"),
        (RateLimited("slow"), "rate_limit_error", "rate_limit_exceeded"),
        (ContextWindowExceeded("long"), "invalid_request_error", "context_length_exceeded"),
        (Overloaded("busy"), "server_error", "service_unavailable"),
        (TimedOut("late"), "server_error", "timeout"),
        (Unreachable("down"), "server_error", "backend_unreachable"),
        (ProtocolError("garbled"), "server_error", "bad_upstream_response"),
        (Cancelled("gone"), "server_error", "cancelled"),
        (Unsupported("no vision"), "invalid_request_error", "unsupported"),
        (BackendError("odd"), "server_error", None),
    ],
)
def test_encode_error_types(err: BackendError, kind: str, code: str | None):
    body = json.loads(openai.encode_error(err))
    param = "messages" if isinstance(err, InvalidRequest) else None
    assert body == {"error": {"message": err.message, "type": kind, "param": param, "code": code}}


def test_encode_error_hides_keys_and_internals():
    err = AuthError(
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234. Bearer abc.def",
        backend_id="openai:https://internal.example",
        raw=b"Traceback (most recent call last): secret",
    )
    body = openai.encode_error(err).decode()
    assert "sk-proj" not in body and "abc.def" not in body
    assert "internal.example" not in body and "Traceback" not in body
    assert (
        json.loads(body)["error"]["message"] == "Incorrect API key provided: [redacted]. [redacted]"
    )


def test_error_round_trip_keeps_the_class():
    for err in (RateLimited("r"), ModelNotFound("model m not found"), AuthError("k")):
        again = openai.decode_error(err.status, openai.encode_error(err))
        assert type(again) is type(err)


# ---------------------------------------------------------------------------
# Embeddings


def test_embed_request_round_trip_and_validation():
    req = openai.decode_embed_request(b'{"model": "e", "input": "hello", "dimensions": 8}')
    assert req == EmbedRequest(model="e", inputs=("hello",), dimensions=8)
    assert openai.encode_embed_request(req) == {"model": "e", "input": ["hello"], "dimensions": 8}
    assert openai.decode_embed_request(openai.encode_embed_request(req)) == req
    for bad, param in [({"model": "e", "input": [1, 2]}, "input"), ({"input": "x"}, "model")]:
        with pytest.raises(InvalidRequest) as info:
            openai.decode_embed_request(bad)
        assert info.value.param == param


def test_embed_response_round_trip_and_order():
    res = EmbedResult(vectors=((0.1, -2.5), (3.0, 0.0)), model="e", usage=Usage(input_tokens=4))
    assert openai.decode_embed_response(openai.encode_embed_response(res)) == res
    body = {
        "object": "list",
        "data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}],
        "model": "e",
    }
    assert openai.decode_embed_response(body) == EmbedResult(vectors=((1.0,), (2.0,)), model="e")


def test_embed_response_base64():
    res = EmbedResult(vectors=((0.5, -1.25, 2.0),), model="e")
    body = openai.encode_embed_response(res, encoding_format="base64")
    assert json.loads(body)["data"][0]["embedding"] == "AAAAPwAAoL8AAABA"
    assert openai.decode_embed_response(body) == res

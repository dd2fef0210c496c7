"""OpenAI codec, stream decoding: real llama-server bytes, tool calls, thinking, usage, finish."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.errors import (
    BackendError,
    ContextWindowExceeded,
    Overloaded,
    ProtocolError,
    RateLimited,
)
from modelport.types import (
    Done,
    Event,
    FinishReason,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from modelport.wire import openai
from modelport.wire.sse import Frame, SSEDecoder
from tests.captures import CAPTURES
from tests.strategies import normalize
from tests.wire.openai.helpers import bytewise_events

# ---------------------------------------------------------------------------
# Real llama-server bytes


STREAM_CAPTURE = CAPTURES / "llamacpp_openai_stream.sse"


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

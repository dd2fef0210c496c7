"""OpenAI codec, stream encoding: frames, tool-call numbering, finish words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.errors import RateLimited
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
from modelport.wire.sse import SSEDecoder

# ---------------------------------------------------------------------------
# Stream encoding


def frames_json(body: bytes) -> list[Any]:
    framer = SSEDecoder()
    frames = framer.feed(body) + framer.close()
    return [f.data if f.data == "[DONE]" else json.loads(f.data) for f in frames]


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

"""Anthropic codec, stream encoding: frames, parallel tool calls, stop reasons, error frames."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.errors import Overloaded
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
from modelport.wire import anthropic
from modelport.wire.sse import SSEDecoder
from tests.wire.anthropic.helpers import official

# ---------------------------------------------------------------------------
# Stream encoding


def frames(body: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    framer = SSEDecoder()
    return [(f.event, json.loads(f.data)) for f in [*framer.feed(body), *framer.close()]]


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

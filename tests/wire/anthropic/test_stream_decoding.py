"""Anthropic codec, stream decoding: a real llama-server capture, stop reasons, tools, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.errors import (
    AuthError,
    BackendError,
    ContextWindowExceeded,
    ModelNotFound,
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
from modelport.wire import anthropic
from modelport.wire.sse import Frame, SSEDecoder
from tests.captures import CAPTURES
from tests.wire.anthropic.helpers import official

# ---------------------------------------------------------------------------
# Stream decoding


CAPTURE_FILE = CAPTURES / "llamacpp_anthropic_stream.sse"


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

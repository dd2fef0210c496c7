"""Ollama codec, the NDJSON stream: text, thinking, tool calls, done reasons, errors."""

from __future__ import annotations

import pytest

from modelport.errors import BackendError, ContextWindowExceeded, ProtocolError
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
from modelport.wire import ollama
from modelport.wire.sse import Frame, NDJSONDecoder
from tests.wire.ollama.helpers import chunk, decode, done, line

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

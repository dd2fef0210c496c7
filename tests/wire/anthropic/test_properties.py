"""Anthropic codec round trips (hypothesis): requests, responses and event streams."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from modelport.types import (
    ChatRequest,
    ChatResponse,
    Done,
    Event,
    FinishReason,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    Usage,
)
from modelport.wire import anthropic
from modelport.wire.sse import SSEDecoder
from tests.strategies import chat_requests, chat_responses, event_streams, normalize

ANTHROPIC_REASONS = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
}


def physical(usage: Usage | None) -> Usage:
    """Cache reads are part of the prompt: a count with more cache reads than input is not."""
    usage = usage or Usage()
    return msgspec.structs.replace(
        usage, input_tokens=max(usage.input_tokens, usage.cache_read_tokens)
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
    # Anthropic's temperature is 0 to 1 (issue 11): the service refuses more before encoding.
    temperature = None if req.temperature is None else min(req.temperature, 1.0)
    req = msgspec.structs.replace(req, response_format=None, temperature=temperature)
    wire = msgspec.json.encode(anthropic.encode_request(req))
    assert anthropic.decode_request(wire) == _anthropic_form(req)


@given(chat_responses(reasons=ANTHROPIC_REASONS))
def test_response_round_trip(resp: ChatResponse) -> None:
    resp = msgspec.structs.replace(resp, usage=physical(resp.usage))
    assert anthropic.decode_response(anthropic.encode_response(resp)) == resp


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

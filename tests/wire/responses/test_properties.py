"""Responses codec round trips (hypothesis): requests, whole responses and event streams."""

from __future__ import annotations

import itertools

import msgspec
from hypothesis import assume, given, settings

from modelport.types import (
    ChatRequest,
    ChatResponse,
    Event,
    FinishReason,
    Message,
    Text,
    Thinking,
    ToolCall,
)
from modelport.wire import responses
from tests.strategies import chat_requests, chat_responses, event_streams, normalize
from tests.wire.responses.helpers import decode_body, encode_events

_REASONS = {FinishReason.STOP: "completed", FinishReason.LENGTH: "incomplete"}


def _responses_shaped(req: ChatRequest) -> ChatRequest:
    """What the Responses dialect carries: no stop words, no thinking in the history (its
    reasoning items are dropped), no `extra` compared."""
    messages = []
    for msg in req.messages:
        parts = tuple(p for p in msg.content if not isinstance(p, Thinking))
        messages.append(Message(msg.role, parts or (Text("x"),)))
    return msgspec.structs.replace(req, messages=tuple(messages), stop=None, extra={})


def _no_adjacent_turns(req: ChatRequest) -> bool:
    """Two assistant turns in a row are one turn in Responses items."""
    roles = [m.role for m in req.messages]
    return all(not (a == b == "assistant") for a, b in itertools.pairwise(roles))


@settings(max_examples=150)
@given(chat_requests(signatures=False))
def test_request_round_trip(req: ChatRequest) -> None:
    req = _responses_shaped(req)
    assume(_no_adjacent_turns(req))
    assume(req.max_tokens is None or req.max_tokens >= 16)  # the API's least (issue 11)
    body = responses.encode_request(req)
    for wire in (body, msgspec.json.encode(body)):
        decoded = responses.decode_request(wire)
        assert msgspec.structs.replace(decoded, extra={}) == req


def _expected_finish(reason: FinishReason, has_calls: bool) -> FinishReason:
    if reason is FinishReason.LENGTH:
        return reason
    return FinishReason.TOOL_CALLS if has_calls else FinishReason.STOP


@settings(max_examples=150)
@given(chat_responses(reasons=_REASONS))
def test_response_round_trip(resp: ChatResponse) -> None:
    decoded = responses.decode_response(responses.encode_response(resp, created=1))
    assert decoded.message == resp.message
    assert decoded.usage == resp.usage
    assert decoded.id == "resp_" + resp.id
    has_calls = any(isinstance(p, ToolCall) for p in resp.message.content)
    assert decoded.finish_reason == _expected_finish(resp.finish_reason, has_calls)


@settings(max_examples=150)
@given(event_streams(reasons=_REASONS))
def test_event_stream_keeps_its_meaning(events: list[Event]) -> None:
    decoded = decode_body(encode_events(events))
    want, got = normalize(events), normalize(decoded)
    assert (got.text, got.thinking, got.signature, got.tool_calls, got.usage) == (
        want.text,
        want.thinking,
        want.signature,
        want.tool_calls,
        want.usage,
    )
    assert got.finish_reason == _expected_finish(want.finish_reason, bool(want.tool_calls))


@settings(max_examples=40)
@given(event_streams(reasons=_REASONS))
def test_event_stream_bytewise(events: list[Event]) -> None:
    body = encode_events(events)
    assert decode_body(body, bytewise=True) == decode_body(body)


@settings(max_examples=100)
@given(event_streams(reasons=_REASONS))
def test_sequence_numbers_count_from_zero(events: list[Event]) -> None:
    body = encode_events(events)
    datas = [line[6:] for line in body.decode().split("\n") if line.startswith("data: ")]
    numbers = [msgspec.json.decode(d)["sequence_number"] for d in datas]
    assert numbers == list(range(len(numbers)))

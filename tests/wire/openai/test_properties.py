"""OpenAI codec round trips (hypothesis): requests, responses and event streams."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings

from modelport.types import ChatRequest, ChatResponse, Done, Event, FinishReason
from modelport.wire import openai
from tests.strategies import chat_requests, chat_responses, event_streams, normalize
from tests.wire.openai.helpers import bytewise_events

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

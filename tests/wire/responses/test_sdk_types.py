"""What the Responses encoders write validates against the openai SDK's own pydantic types
(strictly: `model_validate`, not the lenient construction the SDK itself uses), and so do
the protocol fakes' /v1/responses answers."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent

from modelport.errors import Overloaded
from modelport.types import (
    ChatResponse,
    Done,
    FinishReason,
    Message,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from modelport.wire import responses
from tests.fakes import Reply
from tests.fakes import responses_wire as fake_wire
from tests.fakes.profiles import PROFILES


def _event_classes() -> dict[str, Any]:
    union = typing.get_args(ResponseStreamEvent)[0]  # Annotated[Union[...], discriminator]
    return {
        typing.get_args(c.model_fields["type"].annotation)[0]: c for c in typing.get_args(union)
    }


EVENTS = _event_classes()
REQUEST = responses.decode_request(
    {
        "model": "m",
        "input": "x",
        "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "web_search"},
            {
                "type": "namespace",
                "name": "ns",
                "description": "d",
                "tools": [{"type": "function", "name": "g"}],
            },
        ],
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
        "metadata": {"a": "b"},
    }
)


def _datas(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.decode().split("\n") if line.startswith("data: ")]


def _usage(raw: dict[str, Any]) -> dict[str, Any]:
    """The SDK's newest InputTokensDetails also wants cache_write_tokens, which neither
    OpenAI's older answers nor vLLM's carry (ours do); fill it so the rest is checked."""
    if raw.get("usage"):
        raw["usage"]["input_tokens_details"].setdefault("cache_write_tokens", 0)
    return raw


def _validate_stream(body: bytes) -> list[Any]:
    out = []
    for data in _datas(body):
        if "response" in data:
            _usage(data["response"])
        out.append(EVENTS[data["type"]].model_validate(data))
    return out


@pytest.mark.parametrize("request_", [None, REQUEST])
def test_encoded_stream_validates(request_: Any) -> None:
    encoder = responses.StreamEncoder(id="resp_1", model="m", request=request_, created=1)
    events = [
        ThinkingDelta("a"),
        ThinkingDelta("", "sig"),
        TextDelta("b"),
        ToolCallStart(0, "c", "ns__g"),
        ToolCallDelta(0, "{}"),
        ToolCallEnd(0, "c", "ns__g", {}),
        Done(FinishReason.LENGTH, Usage(1, 2)),
    ]
    body = b"".join(encoder.encode(e) for e in events)
    parsed = _validate_stream(body)
    assert parsed[-1].type == "response.incomplete"
    failing = responses.StreamEncoder(id="resp_2", model="m", request=request_)
    body = failing.encode(TextDelta("x")) + failing.error(Overloaded("busy"))
    assert [e.type for e in _validate_stream(body)][-2:] == ["error", "response.failed"]


def test_encoded_whole_response_validates() -> None:
    message = Message(
        "assistant", (Thinking("t", "s"), Text("hi"), ToolCall("c", "ns__g", {"x": 1}))
    )
    resp = ChatResponse(
        id="r", model="m", message=message, finish_reason=FinishReason.TOOL_CALLS, usage=Usage(3, 4)
    )
    for request in (None, REQUEST):
        raw = _usage(json.loads(responses.encode_response(resp, request=request)))
        parsed = Response.model_validate(raw)
        assert parsed.output_text == "hi"


@pytest.mark.parametrize("kind", ["openai", "vllm"])
def test_fake_answers_validate(kind: str) -> None:
    profile = PROFILES[kind]
    reply = Reply(text="hello", thinking="hmm", tool_calls=[(None, "f", {"a": 1})])
    frames, failure = fake_wire.stream_frames(profile, reply, {"model": "m"}, "m")
    _validate_stream(b"".join(data for data, _ in frames) + b"".join(failure))
    Response.model_validate(_usage(fake_wire.response(profile, reply, {"model": "m"}, "m")))


def test_custom_tool_call_validates() -> None:
    request = responses.decode_request(
        {
            "model": "m",
            "input": "x",
            "tools": [{"type": "custom", "name": "exec", "description": "JS"}],
        }
    )
    encoder = responses.StreamEncoder(id="resp_3", model="m", request=request)
    events = [
        ToolCallStart(0, "c", "exec"),
        ToolCallDelta(0, '{"input": "1+1"}'),
        ToolCallEnd(0, "c", "exec", {"input": "1+1"}),
        Done(FinishReason.TOOL_CALLS, Usage(1, 1)),
    ]
    parsed = _validate_stream(b"".join(encoder.encode(e) for e in events))
    assert parsed[-1].response.output[0].input == "1+1"

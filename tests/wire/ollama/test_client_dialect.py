"""Ollama as a client dialect, without HTTP: what ollama-python and ollama-js really send
(docs/captures/clients/ollama-*.jsonl) decoded, the NDJSON encoders, and the passthrough
meter reading NDJSON one byte at a time."""

from __future__ import annotations

import json

import pytest

from modelport.errors import BackendError, InvalidRequest, ProtocolError, Unsupported
from modelport.types import (
    ChatRequest,
    ChatResponse,
    Done,
    FinishReason,
    Image,
    Message,
    Reasoning,
    Text,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    WireFormat,
)
from modelport.wire import codec_for
from modelport.wire.fields import Target
from modelport.wire.meter import Meter
from tests.captures import client_requests

CHAT = codec_for(WireFormat.OLLAMA)
GENERATE = codec_for(WireFormat.OLLAMA_GENERATE)
CAPTURED = [
    r for r in client_requests("ollama-*.jsonl") if r.path in ("/api/chat", "/api/generate")
]


def test_the_captures_hold_chat_and_generate_bodies() -> None:
    assert {r.path for r in CAPTURED} == {"/api/chat", "/api/generate"}
    assert len(CAPTURED) >= 15


@pytest.mark.parametrize("captured", CAPTURED, ids=[r.name for r in CAPTURED])
def test_every_captured_body_decodes(captured) -> None:  # type: ignore[no-untyped-def]
    codec = CHAT if captured.path == "/api/chat" else GENERATE
    request = codec.decode_request(json.dumps(captured.body).encode())
    assert request.model == captured.body["model"]
    assert request.stream is (captured.body.get("stream") is not False)
    assert request.messages


def _captured(name: str) -> dict:  # type: ignore[type-arg]
    return next(r.body for r in CAPTURED if r.name == name)


def test_the_tool_round_trip_pairs_the_result_by_tool_name() -> None:
    request = CHAT.decode_request(_captured("ollama-py-chat-tools#2"))
    _user, assistant, tool = request.messages
    (call,) = assistant.content
    assert isinstance(call, ToolCall) and call.id.startswith("call_")
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert tool == Message("tool", (ToolResult(call.id, (Text("sunny in Paris"),)),))


def test_results_pair_by_id_then_name_then_order() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "function": {"name": "f", "arguments": {}}},
                    {"id": "b", "function": {"name": "g", "arguments": {}}},
                    {"id": "c", "function": {"name": "h", "arguments": {}}},
                ],
            },
            {"role": "tool", "content": "g's", "tool_name": "g"},
            {"role": "tool", "content": "c's", "tool_call_id": "c"},
            {"role": "tool", "content": "next"},
        ],
    }
    results = CHAT.decode_request(body).messages[2].content
    assert [(r.tool_call_id, r.content[0].text) for r in results] == [  # type: ignore[union-attr]
        ("b", "g's"),
        ("c", "c's"),
        ("a", "next"),
    ]


def test_a_tool_result_without_a_call_is_refused() -> None:
    body = {"model": "m", "messages": [{"role": "tool", "content": "x", "tool_name": "f"}]}
    with pytest.raises(InvalidRequest, match=r"messages\[0\]: a tool result of 'f' answers no"):
        CHAT.decode_request(body)


def test_settings_map_onto_the_request() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is it", "images": ["/9j/4AAQ"]},
        ],
        "think": "high",
        "format": {"type": "object"},
        "options": {"temperature": 0, "top_p": 0.5, "num_predict": -1, "stop": "x", "seed": 3},
        "keep_alive": 0,
        "stream": False,
    }
    request = CHAT.decode_request(body)
    assert request == ChatRequest(
        model="m",
        messages=(
            Message("user", (Text("what is it"), Image(data="/9j/4AAQ", media_type="image/jpeg"))),
        ),
        system="be brief",
        temperature=0.0,
        top_p=0.5,
        stop=("x",),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": {"type": "object"}},
        },
        reasoning=Reasoning(effort="high"),
        stream=False,
        extra={"keep_alive": 0, "options": {"seed": 3}},
    )
    assert CHAT.decode_request({**body, "think": False}).reasoning == Reasoning(effort="none")
    assert CHAT.decode_request({**body, "format": "json"}).response_format == {
        "type": "json_object"
    }


@pytest.mark.parametrize(
    ("field", "value", "wording"),
    [
        ("think", "hard", "think: 'hard' is not supported"),
        ("think", 1, "think: expected true, false"),
        ("format", 3, "format: expected"),
        ("options", [], "options: expected an object"),
        ("keep_alive", [], "keep_alive: expected a number of seconds or a duration string"),
        ("stream", "yes", "stream: expected a boolean"),
    ],
)
def test_bad_settings_are_refused_by_name(field: str, value: object, wording: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], field: value}
    with pytest.raises(InvalidRequest, match=wording):
        CHAT.decode_request(body)


def test_suffix_is_refused_by_name_only_when_transcoding() -> None:
    request = GENERATE.decode_request(_captured("ollama-py-generate-suffix#1"))
    assert request.extra["suffix"] == "\n    return c"
    with pytest.raises(Unsupported, match=r"suffix: .* is not supported by llamacpp"):
        GENERATE.upstream_extra(request, Target.OPENAI, "llamacpp")
    assert GENERATE.upstream_extra(request, Target.OLLAMA, "ollama")["suffix"] == "\n    return c"
    chat = CHAT.decode_request(_captured("ollama-py-chat#1"))
    CHAT.upstream_extra(chat, Target.OPENAI, "llamacpp")


def _lines(body: bytes) -> list[dict]:  # type: ignore[type-arg]
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.decode().split("\n")[:-1]]


def test_the_chat_stream_encoder_writes_ollamas_lines() -> None:
    encoder = CHAT.stream_encoder(request_id="r", model="m")
    out = b"".join(
        encoder.encode(e)
        for e in [
            ThinkingDelta("hmm"),
            TextDelta("Hi"),
            ToolCallStart(0, "call_1", "f"),
            ToolCallDelta(0, '{"a": 1}'),
            ToolCallEnd(0, "call_1", "f", {"a": 1}),
            Done(FinishReason.TOOL_CALLS, Usage(3, 4)),
        ]
    )
    thinking, text, call, done = _lines(out)
    assert thinking["message"] == {"role": "assistant", "content": "", "thinking": "hmm"}
    assert text["message"] == {"role": "assistant", "content": "Hi"} and text["done"] is False
    assert call["message"]["tool_calls"] == [
        {"id": "call_1", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}}
    ]
    assert done["done"] is True and done["done_reason"] == "stop"  # Ollama's word after calls
    assert (done["prompt_eval_count"], done["eval_count"]) == (3, 4)
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(done[key], int) and done[key] >= 0
    assert done["created_at"].endswith("Z") and done["model"] == "m"


def test_the_generate_encoders_write_response() -> None:
    encoder = GENERATE.stream_encoder(request_id="r", model="m")
    text, done = _lines(encoder.encode(TextDelta("Hi")) + encoder.encode(Done(FinishReason.LENGTH)))
    assert (text["response"], text["done"]) == ("Hi", False) and "message" not in text
    assert (done["response"], done["done_reason"]) == ("", "length")
    whole = ChatResponse(
        id="x",
        model="m",
        message=Message("assistant", (Text("Hi"),)),
        finish_reason=FinishReason.STOP,
    )
    assert json.loads(GENERATE.encode_response(whole))["response"] == "Hi"
    assert json.loads(CHAT.encode_response(whole))["message"] == {
        "role": "assistant",
        "content": "Hi",
    }


OLLAMA_STREAM = (
    b'{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant",'
    b'"content":"Hel"},"done":false}\n'
    b'{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant",'
    b'"content":"lo"},"done":false}\n'
    b'{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant",'
    b'"content":""},"done":true,"done_reason":"length","total_duration":5,'
    b'"prompt_eval_count":11,"eval_count":2}\n'
)


@pytest.mark.parametrize("format", [WireFormat.OLLAMA, WireFormat.OLLAMA_GENERATE])
def test_the_meter_reads_ndjson_one_byte_at_a_time(format: WireFormat) -> None:
    body = OLLAMA_STREAM
    if format is WireFormat.OLLAMA_GENERATE:
        body = body.replace(b'"message":{"role":"assistant","content":"Hel"}', b'"response":"Hel"')
    meter = Meter(format, stream=True)
    out = [meter.feed(body[i : i + 1]) for i in range(len(body))]
    out.append(meter.close())
    assert meter.outcome() is None
    assert b"".join(out) == body
    assert meter.usage == Usage(11, 2)
    assert (meter.finish_reason, meter.raw_reason) == (FinishReason.LENGTH, "length")


def test_the_meter_stops_at_an_error_line() -> None:
    first = OLLAMA_STREAM.split(b"\n")[0] + b"\n"
    body = first + b'{"error":"server busy, please try again"}\n'
    meter = Meter(WireFormat.OLLAMA, stream=True)
    forwarded = meter.feed(body) + meter.close()
    assert forwarded == first
    error = meter.outcome()
    assert isinstance(error, BackendError) and error.message == "server busy, please try again"


def test_the_meter_says_a_stream_without_its_done_line_was_cut() -> None:
    meter = Meter(WireFormat.OLLAMA, stream=True)
    meter.feed(OLLAMA_STREAM.split(b"\n")[0] + b"\n")
    meter.close()
    assert isinstance(meter.outcome(), ProtocolError)


def test_the_meter_reads_a_whole_answer() -> None:
    whole = OLLAMA_STREAM.split(b"\n")[2]
    meter = Meter(WireFormat.OLLAMA, stream=False)
    meter.feed(whole)
    assert meter.close() == whole and meter.usage == Usage(11, 2)


def test_generate_encodes_back_to_a_generate_body() -> None:
    body = {
        "model": "m",
        "prompt": "what is it",
        "system": "be brief",
        "images": ["iVBORw0KGgo="],
        "options": {"num_predict": 8, "seed": 1},
        "stream": False,
    }
    encoded = GENERATE.encode_request(GENERATE.decode_request(body))
    assert encoded["prompt"] == "what is it" and encoded["system"] == "be brief"
    assert encoded["images"] == ["iVBORw0KGgo="] and encoded["stream"] is False
    assert encoded["options"] == {"seed": 1, "num_predict": 8}
    assert "messages" not in encoded

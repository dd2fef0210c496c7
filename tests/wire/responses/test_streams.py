"""Responses codec, answers: the event sequence, failures, incomplete answers, the whole
Response object, the registry and the passthrough meter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.errors import (
    BackendError,
    ContextWindowExceeded,
    InvalidRequest,
    Overloaded,
    ProtocolError,
    RateLimited,
)
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
    WireFormat,
)
from modelport.wire import codec_for, responses
from modelport.wire.meter import Meter
from tests.wire.responses.helpers import decode_body, encode_events


def frames(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        event, data = block.split("\n", 1)
        out.append((event.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


NAMESPACED = responses.decode_request(
    {
        "model": "m",
        "input": "x",
        "instructions": "I",
        "metadata": {"k": "v"},
        "tools": [
            {
                "type": "namespace",
                "name": "crm",
                "description": "d",
                "tools": [{"type": "function", "name": "get"}],
            }
        ],
    }
)


def test_full_event_sequence() -> None:
    events = [
        ThinkingDelta("hm"),
        TextDelta("Hel"),
        TextDelta("lo"),
        ToolCallStart(0, "c1", "crm__get"),
        ToolCallDelta(0, '{"id":'),
        ToolCallDelta(0, "7}"),
        ToolCallEnd(0, "c1", "crm__get", {"id": 7}),
        Done(FinishReason.TOOL_CALLS, Usage(5, 6, cache_read_tokens=2, reasoning_tokens=1)),
    ]
    got = frames(encode_events(events, NAMESPACED, id="resp_abc"))
    assert [name for name, _ in got] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert all(data["type"] == name for name, data in got)
    assert [data["sequence_number"] for _, data in got] == list(range(len(got)))
    created = got[0][1]["response"]
    assert (created["id"], created["status"], created["instructions"]) == (
        "resp_abc",
        "in_progress",
        "I",
    )
    assert created["metadata"] == {"k": "v"}
    call = got[19][1]["item"]
    assert (call["name"], call["namespace"], call["call_id"]) == ("get", "crm", "c1")
    assert call["arguments"] == '{"id":7}'
    final = got[-1][1]["response"]
    assert final["status"] == "completed"
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert final["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 11,
    }


def test_cut_by_length_is_incomplete() -> None:
    got = frames(encode_events([TextDelta("a"), Done(FinishReason.LENGTH, Usage(1, 1))]))
    name, data = got[-1]
    assert name == "response.incomplete"
    assert data["response"]["status"] == "incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert decode_body(encode_events([TextDelta("a"), Done(FinishReason.LENGTH)]))[-1] == Done(
        FinishReason.LENGTH, None, "incomplete"
    )


def test_failure_after_the_start_is_error_then_failed() -> None:
    encoder = responses.StreamEncoder(id="resp_z", model="m")
    encoder.encode(TextDelta("par"))
    got = frames(encoder.error(Overloaded("engine busy")))
    assert [name for name, _ in got] == ["error", "response.failed"]
    assert got[0][1]["message"] == "engine busy"
    failed = got[1][1]["response"]
    assert (failed["id"], failed["status"]) == ("resp_z", "failed")
    assert failed["error"]["message"] == "engine busy"
    assert failed["output"] == []  # the open message never finished
    assert encoder.encode(Done(FinishReason.STOP)) == b""  # nothing after the failure


def test_failure_before_any_answer_is_an_error_event_only() -> None:
    encoder = codec_for(WireFormat.RESPONSES).stream_encoder(request_id="", model="")
    got = frames(encoder.error(InvalidRequest("bad", param="input")))
    assert [name for name, _ in got] == ["error"]
    assert got[0][1]["code"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("event", "cls"),
    [
        (
            {
                "type": "response.failed",
                "response": {"error": {"code": "server_error", "message": "x"}},
            },
            BackendError,
        ),
        ({"type": "error", "code": "rate_limit_exceeded", "message": "slow"}, RateLimited),
        (
            {"type": "error", "code": "context_length_exceeded", "message": "long"},
            ContextWindowExceeded,
        ),
    ],
)
def test_decoder_raises_on_error_and_failed_events(
    event: dict[str, Any], cls: type[BackendError]
) -> None:
    body = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
    with pytest.raises(cls):
        decode_body(body)


def test_decoder_needs_the_terminal_event() -> None:
    body = encode_events([TextDelta("a"), Done(FinishReason.STOP)])
    cut = body[: body.rindex(b"event: response.completed")]
    with pytest.raises(ProtocolError):
        decode_body(cut)


def test_whole_response_object() -> None:
    resp = ChatResponse(
        id="chatcmpl-9",
        model="m",
        message=Message(
            "assistant",
            (Thinking("why", "sig"), Text("Hi."), ToolCall("c2", "crm__get", {"id": 1})),
        ),
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(3, 4),
    )
    body = json.loads(responses.encode_response(resp, request=NAMESPACED, created=5))
    assert (body["id"], body["object"], body["status"], body["created_at"]) == (
        "resp_chatcmpl-9",
        "response",
        "completed",
        5,
    )
    reasoning, message, call = body["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "why"}]
    assert reasoning["encrypted_content"] == "sig"
    assert message["content"][0] == {
        "type": "output_text",
        "text": "Hi.",
        "annotations": [],
        "logprobs": [],
    }
    assert (call["name"], call["namespace"], call["arguments"]) == ("get", "crm", '{"id":1}')
    assert body["usage"]["total_tokens"] == 7
    assert body["instructions"] == "I"


def test_registry_and_protocol() -> None:
    codec = codec_for(WireFormat.RESPONSES)
    assert codec is responses.CODEC
    assert codec.format is WireFormat.RESPONSES
    err = InvalidRequest("input: field required", param="input")
    assert codec.error_status(err) == 400
    assert json.loads(codec.encode_error(err))["error"]["param"] == "input"


def test_meter_reads_a_relayed_stream() -> None:
    body = encode_events([TextDelta("hello"), Done(FinishReason.STOP, Usage(8, 2))])
    meter = Meter(WireFormat.RESPONSES, stream=True)
    out = b"".join(meter.feed(body[i : i + 7]) for i in range(0, len(body), 7)) + meter.close()
    assert out == body  # every frame goes to the client untouched
    assert meter.outcome() is None
    assert meter.usage == Usage(8, 2)
    assert meter.finish_reason is FinishReason.STOP


def test_meter_stops_at_a_failure() -> None:
    encoder = responses.StreamEncoder(id="resp_q", model="m")
    body = encoder.encode(TextDelta("a")) + encoder.error(Overloaded("busy"))
    meter = Meter(WireFormat.RESPONSES, stream=True)
    out = meter.feed(body) + meter.close()
    assert b"event: error" not in out  # the gateway writes its own error frame
    assert isinstance(meter.outcome(), Overloaded)


def test_meter_reads_a_whole_response() -> None:
    resp = ChatResponse(
        id="r",
        model="m",
        message=Message.assistant("x"),
        finish_reason=FinishReason.STOP,
        usage=Usage(4, 1),
    )
    meter = Meter(WireFormat.RESPONSES, stream=False)
    meter.feed(responses.encode_response(resp))
    meter.close()
    assert meter.usage == Usage(4, 1)


CUSTOM = responses.decode_request(
    {
        "model": "m",
        "input": [
            {"role": "user", "content": "run it"},
            {
                "type": "additional_tools",
                "role": "developer",
                "tools": [
                    {
                        "type": "namespace",
                        "name": "functions",
                        "description": "",
                        "tools": [{"type": "custom", "name": "exec", "description": "JS"}],
                    }
                ],
            },
        ],
    }
)


def test_custom_tool_call_streams_as_custom_events() -> None:
    args = '{"input": "text(\\"hi\\")"}'
    events = [
        ToolCallStart(0, "c5", "functions__exec"),
        ToolCallDelta(0, args[:9]),
        ToolCallDelta(0, args[9:]),
        ToolCallEnd(0, "c5", "functions__exec", {"input": 'text("hi")'}),
        Done(FinishReason.TOOL_CALLS),
    ]
    got = frames(encode_events(events, CUSTOM))
    names = [name for name, _ in got]
    assert "response.function_call_arguments.delta" not in names
    delta = next(d for n, d in got if n == "response.custom_tool_call_input.delta")
    assert delta["delta"] == 'text("hi")'
    done = next(d for n, d in got if n == "response.output_item.done")["item"]
    assert done == {
        "type": "custom_tool_call",
        "id": "ctc_c5",
        "call_id": "c5",
        "name": "exec",
        "input": 'text("hi")',
        "namespace": "functions",
    }
    # Read back (an engine that serves Responses sends the same items).
    assert decode_body(encode_events(events, CUSTOM))[-2] == ToolCallEnd(
        0, "c5", "functions__exec", {"input": 'text("hi")'}
    )


def test_relay_goes_to_responses_untouched() -> None:
    codec = codec_for(WireFormat.RESPONSES)
    assert codec.relay_path == "/responses"
    body = json.dumps({"model": "m", "input": "x", "stream": True}).encode()
    prepared = codec.prepare_relay(body, api_key="k")
    assert prepared.body is body and prepared.stream and not prepared.drop_usage_chunk
    assert dict(prepared.headers) == {}

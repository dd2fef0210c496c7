"""Anthropic codec, whole responses: decoding, encoding, error bodies in their place."""

from __future__ import annotations

import json

import pytest

from modelport.errors import Overloaded, ProtocolError
from modelport.types import ChatResponse, FinishReason, Message, Text, Thinking, ToolCall, Usage
from modelport.wire import anthropic

# ---------------------------------------------------------------------------
# Responses


def test_decode_response() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "so", "signature": "s1"},
            {"type": "text", "text": "Hello"},
            {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"x": "y"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 5,
            "output_tokens": 20,
            "output_tokens_details": {"thinking_tokens": 4},
        },
    }
    resp = anthropic.decode_response(json.dumps(body).encode())
    assert resp == ChatResponse(
        id="msg_1",
        model="claude-x",
        message=Message(
            "assistant", (Thinking("so", "s1"), Text("Hello"), ToolCall("toolu_9", "f", {"x": "y"}))
        ),
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=45, output_tokens=20, cache_read_tokens=30, reasoning_tokens=4),
        raw_reason="tool_use",
    )


def test_encode_response_shape() -> None:
    resp = ChatResponse(
        id="msg_2",
        model="m",
        message=Message("assistant", (Text("Hi"), ToolCall("c", "f", {}))),
        finish_reason=FinishReason.LENGTH,
        usage=Usage(input_tokens=26, output_tokens=12, cache_read_tokens=21),
        raw_reason="length",
    )
    assert json.loads(anthropic.encode_response(resp)) == {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "text", "text": "Hi"},
            {"type": "tool_use", "id": "c", "name": "f", "input": {}},
        ],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 5,
            "output_tokens": 12,
            "cache_read_input_tokens": 21,
            "cache_creation_input_tokens": 0,
        },
    }


def test_error_body_in_place_of_a_response_raises() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    with pytest.raises(Overloaded):
        anthropic.decode_response(body)
    with pytest.raises(ProtocolError):
        anthropic.decode_response(b"<html>")

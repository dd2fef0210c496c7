"""Ollama codec, whole answers from /api/chat."""

from __future__ import annotations

import json

import pytest

from modelport.errors import Overloaded, ProtocolError
from modelport.types import FinishReason, Usage
from modelport.wire import ollama

# -- whole answers ---------------------------------------------------------------------


def test_decode_chat_response() -> None:
    body = json.dumps(
        {
            "model": "qwen3:8b",
            "message": {
                "role": "assistant",
                "content": "Sunny.",
                "thinking": "Check weather.",
                "tool_calls": [{"function": {"name": "w", "arguments": {"c": "Oslo"}}}],
            },
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 20,
            "eval_count": 9,
        }
    ).encode()
    response = ollama.decode_chat_response(body)
    assert response.model == "qwen3:8b"
    assert response.id
    assert response.message.text == "Sunny."
    assert response.message.thinking == "Check weather."
    [call] = response.message.tool_calls
    assert (call.name, call.arguments) == ("w", {"c": "Oslo"}) and call.id.startswith("call_")
    assert (response.finish_reason, response.usage, response.raw_reason) == (
        FinishReason.TOOL_CALLS,
        Usage(20, 9),
        "stop",
    )


def test_decode_chat_response_without_done_or_with_error() -> None:
    with pytest.raises(ProtocolError):
        ollama.decode_chat_response(b'{"model":"m","message":{"content":"x"},"done":false}')
    with pytest.raises(Overloaded):
        ollama.decode_chat_response(b'{"error":"server overloaded, please retry shortly"}')

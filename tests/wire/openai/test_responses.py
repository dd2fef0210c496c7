"""OpenAI codec, whole responses: real llama-server bytes, shapes and variants."""

from __future__ import annotations

import json

import pytest

from modelport.errors import ModelNotFound, ProtocolError
from modelport.types import ChatResponse, FinishReason, Message, Text, Thinking, ToolCall, Usage
from modelport.wire import openai
from tests.captures import CAPTURES

RESPONSE_CAPTURE = CAPTURES / "llamacpp_openai_response.json"


def test_llamacpp_response_capture():
    resp = openai.decode_response(RESPONSE_CAPTURE.read_bytes())
    assert resp == ChatResponse(
        id="chatcmpl-0AtvIizI1rdhqS2GkWFjBAHVkeVZszV9",
        model="gemma.gguf",
        message=Message.assistant("Say hello.<|im_end|>\n<|im"),
        finish_reason=FinishReason.LENGTH,
        usage=Usage(input_tokens=26, output_tokens=12, cache_read_tokens=21),
        raw_reason="length",
    )


def test_response_capture_as_dict_gives_the_same():
    body = json.loads(RESPONSE_CAPTURE.read_bytes())
    assert openai.decode_response(body) == openai.decode_response(RESPONSE_CAPTURE.read_bytes())


# ---------------------------------------------------------------------------
# Responses


def test_encode_response_shape():
    resp = ChatResponse(
        id="chatcmpl-1",
        model="m",
        message=Message(
            "assistant", (Thinking("why"), Text("yes"), ToolCall("call_1", "f", {"x": "y"}))
        ),
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(10, 20, cache_read_tokens=5),
        raw_reason="tool_use",
    )
    assert json.loads(openai.encode_response(resp, created=99)) == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 99,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "yes",
                    "reasoning_content": "why",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x":"y"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 20,
            "total_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 5},
        },
    }


def test_decode_response_variants():
    body = {
        "id": "r",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "",
                    "reasoning": "hm",
                    "tool_calls": [
                        {"type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    resp = openai.decode_response(body)
    thinking, call = resp.message.content
    assert thinking == Thinking("hm")
    assert isinstance(call, ToolCall) and call.id.startswith("call_") and call.name == "f"
    assert resp.usage is None
    assert resp.finish_reason is FinishReason.TOOL_CALLS


def test_decode_response_error_body_raises():
    with pytest.raises(ModelNotFound):
        openai.decode_response(b'{"error": {"code": 404, "message": "model \'x\' not found"}}')


@pytest.mark.parametrize("body", [b"{", b'{"choices": []}', b'{"choices": [{"index": 0}]}'])
def test_decode_response_unreadable_raises_protocol_error(body: bytes):
    with pytest.raises(ProtocolError):
        openai.decode_response(body)

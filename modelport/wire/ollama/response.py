"""Whole answers: a ChatResponse as Ollama's /api/chat or /api/generate object, and an
engine's whole /api/chat answer read back (for the passthrough meter)."""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.types import AnswerTiming, ChatResponse, Text, Thinking, ToolCall
from modelport.wire.ollama.stream_decode import decode_chat_response
from modelport.wire.ollama.stream_encode import created_at, done_word, metrics, tool_call_json

JSONObject = dict[str, Any]
_encode = msgspec.json.Encoder().encode


def encode_response(
    response: ChatResponse, *, generate: bool = False, timing: AnswerTiming | None = None
) -> bytes:
    """The `stream: false` object. Durations are the gateway's wall times (integer
    nanoseconds, as the clients' types want): `total_duration` from decoding the request to
    the engine's whole answer, `load_duration` until the engine was asked, `eval_duration`
    the engine's time; a whole answer has no first token to split that at, so
    `prompt_eval_duration` is 0. Without `timing` (not measured) all are 0."""
    parts = response.message.content
    text = "".join(p.text for p in parts if isinstance(p, Text))
    thinking = "".join(p.text for p in parts if isinstance(p, Thinking))
    body: JSONObject = {"model": response.model, "created_at": created_at()}
    if generate:
        body["response"] = text
        if thinking:
            body["thinking"] = thinking
    else:
        message: JSONObject = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        calls = [p for p in parts if isinstance(p, ToolCall)]
        if calls:
            message["tool_calls"] = [
                tool_call_json(i, c.id, c.name, c.arguments) for i, c in enumerate(calls)
            ]
        body["message"] = message
    body["done"] = True
    body["done_reason"] = done_word(response.finish_reason, response.raw_reason)
    body.update(metrics(response.usage, 0, None))
    if timing is not None:
        body["total_duration"] = timing.total_ns
        body["load_duration"] = timing.load_ns
        body["eval_duration"] = timing.engine_ns
    return _encode(body)


def decode_response(body: bytes | dict[str, Any]) -> ChatResponse:
    """An engine's whole answer (chat or generate: the decoder reads both)."""
    raw = body if isinstance(body, bytes) else _encode(body)
    return decode_chat_response(raw)

"""Non-streaming /v1/messages answers, and Anthropic usage, both ways."""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import (
    InvalidRequest,
    ProtocolError,
)
from modelport.types import (
    AnswerTiming,
    ChatRequest,
    ChatResponse,
    Message,
    Part,
    Text,
    Thinking,
    ToolCall,
    Usage,
)
from modelport.wire.anthropic.constants import (
    json_decode,
    json_encode,
)
from modelport.wire.anthropic.finish import stop_fields, stop_reason_to_finish
from modelport.wire.anthropic.request import decode_block
from modelport.wire.anthropic.request_encode import encode_part
from modelport.wire.errors import error_from_payload


def decode_response(body: bytes | dict[str, Any]) -> ChatResponse:
    """A non-streaming /v1/messages answer; an error body raises its BackendError."""
    obj = _load_answer(body)
    if obj.get("type") == "error":
        raise error_from_payload(obj, raw_of(body))
    content = obj.get("content") or []
    if not isinstance(content, list):
        raise ProtocolError("message content is not an array", raw=raw_of(body))
    stop_reason = obj.get("stop_reason")
    stop_sequence = obj.get("stop_sequence")
    return ChatResponse(
        id=str(obj.get("id") or ""),
        model=str(obj.get("model") or ""),
        message=Message("assistant", tuple(_answer_parts(content, body))),
        finish_reason=stop_reason_to_finish(stop_reason),
        usage=usage_from(obj.get("usage")),
        raw_reason=stop_reason,
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
    )


def _load_answer(body: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    try:
        obj = json_decode(body)
    except msgspec.DecodeError:
        raise ProtocolError("response is not valid JSON", raw=body) from None
    if not isinstance(obj, dict):
        raise ProtocolError("response is not a JSON object", raw=body)
    return obj


def raw_of(body: bytes | str | dict[str, Any]) -> str | bytes:
    return body if isinstance(body, str | bytes) else json_encode(body)


_ANSWER_BLOCKS = frozenset({"text", "thinking", "redacted_thinking", "tool_use"})


def _answer_parts(blocks: list[Any], body: bytes | dict[str, Any]) -> list[Part]:
    """Known blocks become parts; others (server tools, newer kinds) are skipped."""
    parts: list[Part] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise ProtocolError("content block is not an object", raw=raw_of(body))
        if block.get("type") not in _ANSWER_BLOCKS:
            continue
        try:
            parts.append(decode_block(block, f"content[{i}]"))
        except InvalidRequest as exc:
            raise ProtocolError(
                f"malformed content block: {exc.message}", raw=raw_of(body)
            ) from None
    return parts


def usage_from(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    cache_read = _count(usage.get("cache_read_input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=_count(usage.get("input_tokens")) + cache_read + cache_write,
        output_tokens=_count(usage.get("output_tokens")),
        cache_read_tokens=cache_read,
        reasoning_tokens=thinking,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_body(usage: Usage | None) -> dict[str, Any]:
    """Anthropic usage: input_tokens leaves out the cache reads counted beside it."""
    usage = usage or Usage()
    body: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cache_read_tokens),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation_input_tokens": 0,
    }
    if usage.reasoning_tokens:
        body["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return body


def encode_response(
    resp: ChatResponse,
    *,
    request: ChatRequest | None = None,
    timing: AnswerTiming | None = None,  # the protocol's; a Message has no durations
) -> bytes:
    """A non-streaming /v1/messages answer. Images and tool results cannot be assistant content.
    (`request`, the Codec protocol's, is not needed here.)"""
    blocks = [
        encode_part(p) for p in resp.message.content if isinstance(p, Text | ToolCall | Thinking)
    ]
    stop_reason, stop_sequence = stop_fields(
        resp.finish_reason, resp.raw_reason, resp.stop_sequence
    )
    return json_encode(
        {
            "id": resp.id,
            "type": "message",
            "role": "assistant",
            "model": resp.model,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage_body(resp.usage),
        }
    )

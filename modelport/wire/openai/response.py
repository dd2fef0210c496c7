"""Non-streaming chat.completion answers: decode an engine's, encode a client's."""

from __future__ import annotations

import time
from typing import Any

from modelport.errors import (
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
)
from modelport.wire.arguments import parse_arguments
from modelport.wire.ids import mint_tool_id
from modelport.wire.openai.errors import payload_error
from modelport.wire.openai.finish import finish_reason_from, finish_word, matched_stop
from modelport.wire.openai.request_encode import add_reasoning, call_json
from modelport.wire.openai.structs import (
    RESPONSE,
    WireFunction,
    WireMessage,
    WireResponse,
    decode_struct,
    encode_json,
    usage_from,
    usage_json,
)

JSONObject = dict[str, Any]


def _content_text(content: str | list[Any] | None) -> str:
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return content or ""


def _response_parts(msg: WireMessage) -> tuple[Part, ...]:
    parts: list[Part] = []
    thinking = msg.reasoning_content or msg.reasoning
    if thinking or msg.reasoning_signature:
        parts.append(Thinking(thinking or "", msg.reasoning_signature))
    text = _content_text(msg.content) or msg.refusal
    if text:
        parts.append(Text(text))
    for call in msg.tool_calls or ():
        function = call.function or WireFunction()
        name = function.name or ""
        arguments = parse_arguments(function.arguments, name)
        parts.append(ToolCall(call.id or mint_tool_id("call_"), name, arguments))
    return tuple(parts)


def decode_response(body: bytes | dict[str, Any]) -> ChatResponse:
    """A non-streaming chat.completion; an `error` member raises the classified error."""
    resp: WireResponse = decode_struct(RESPONSE, WireResponse, body)
    if resp.error is not None:
        raise payload_error(resp.error, body if isinstance(body, bytes) else encode_json(body))
    choice = next((c for c in resp.choices or () if not c.index), None)
    if choice is None or choice.message is None:
        raise ProtocolError("response has no choices[0].message")
    return ChatResponse(
        id=resp.id or "",
        model=resp.model or "",
        message=Message("assistant", _response_parts(choice.message)),
        finish_reason=finish_reason_from(choice.finish_reason),
        usage=usage_from(resp.usage) if resp.usage else None,
        raw_reason=choice.finish_reason,
        stop_sequence=matched_stop(choice.finish_reason, choice.stop_reason),
    )


def _message_out(msg: Message) -> JSONObject:
    out: JSONObject = {"role": "assistant", "content": msg.text if _has_text(msg) else None}
    add_reasoning(out, msg)
    if msg.tool_calls:
        out["tool_calls"] = [call_json(c) for c in msg.tool_calls]
    return out


def _has_text(msg: Message) -> bool:
    return any(isinstance(p, Text) for p in msg.content)


def encode_response(
    resp: ChatResponse,
    *,
    created: int | None = None,
    request: ChatRequest | None = None,
    timing: AnswerTiming | None = None,  # the protocol's; a chat.completion has no durations
) -> bytes:
    """A chat.completion object as the official SDKs read it (`request`: unused here)."""
    body: JSONObject = {
        "id": resp.id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": resp.model,
        "choices": [
            {
                "index": 0,
                "message": _message_out(resp.message),
                "finish_reason": finish_word(resp.finish_reason, resp.raw_reason),
                "logprobs": None,
            }
        ],
    }
    if resp.usage is not None:
        body["usage"] = usage_json(resp.usage)
    return encode_json(body)

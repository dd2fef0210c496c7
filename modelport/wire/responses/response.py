"""Whole (non-streaming) Response objects: encode a client's, decode an engine's."""

from __future__ import annotations

import time
from typing import Any

from modelport.errors import ProtocolError
from modelport.types import (
    AnswerTiming,
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    Part,
    Text,
    Thinking,
    ToolCall,
    Usage,
)
from modelport.wire.arguments import parse_arguments
from modelport.wire.errors import error_from_payload
from modelport.wire.ids import mint_tool_id
from modelport.wire.responses.envelope import (
    Echo,
    encode_json,
    output_items,
    response_id,
    status_of,
    usage_json,
)
from modelport.wire.responses.tools import CUSTOM_ARGUMENT, flat_name
from modelport.wire.validate import load_body

JSONObject = dict[str, Any]
CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})


def encode_response(
    resp: ChatResponse,
    *,
    request: ChatRequest | None = None,
    created: int | None = None,
    timing: AnswerTiming | None = None,  # the protocol's; a Response has no durations
) -> bytes:
    """A Response object as the official SDKs read it."""
    echo = Echo(request)
    status, incomplete = status_of(resp.finish_reason)
    id = response_id(resp.id)
    suffix = id[len("resp_") :]
    stamp = int(time.time()) if created is None else created
    body = echo.response(
        id=id,
        model=resp.model,
        created=stamp,
        status=status,
        output=output_items(resp.message, echo, suffix, status),
    )
    body["incomplete_details"] = incomplete
    if resp.usage is not None:
        body["usage"] = usage_json(resp.usage)
    return encode_json(body)


def usage_from(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    inputs = raw.get("input_tokens_details") or {}
    outputs = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=int(inputs.get("cached_tokens") or 0),
        reasoning_tokens=int(outputs.get("reasoning_tokens") or 0),
    )


def reasoning_text(item: JSONObject) -> str:
    """A reasoning item's text: its summary, else its raw reasoning content (vLLM's)."""
    summary = item.get("summary") or []
    texts = [s.get("text", "") for s in summary if isinstance(s, dict)]
    if not any(texts):
        content = item.get("content") or []
        texts = [c.get("text", "") for c in content if isinstance(c, dict)]
    return "".join(t for t in texts if isinstance(t, str))


def call_from(item: JSONObject) -> ToolCall:
    """A `function_call` or `custom_tool_call` output item as a canonical call."""
    name = str(item.get("name") or "")
    namespace = item.get("namespace")
    if isinstance(namespace, str) and namespace:
        name = flat_name(namespace, name)
    call_id = item.get("call_id") or mint_tool_id("call_")
    if item.get("type") == "custom_tool_call":
        value = item.get("input")
        return ToolCall(
            str(call_id), name, {CUSTOM_ARGUMENT: value if isinstance(value, str) else ""}
        )
    return ToolCall(str(call_id), name, parse_arguments(item.get("arguments"), name))


def _parts(output: list[Any]) -> tuple[Part, ...]:
    parts: list[Part] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            text, signature = reasoning_text(item), item.get("encrypted_content")
            if text or signature:
                parts.append(Thinking(text, signature if isinstance(signature, str) else None))
        elif kind == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") in ("output_text", "refusal"):
                    parts.append(Text(str(part.get("text") or part.get("refusal") or "")))
        elif kind in CALL_ITEMS:
            parts.append(call_from(item))
    return tuple(parts)


def finish_from(status: Any, incomplete: Any, parts: tuple[Part, ...]) -> FinishReason:
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        if reason == "content_filter":
            return FinishReason.CONTENT_FILTER
        return FinishReason.LENGTH
    if any(isinstance(p, ToolCall) for p in parts):
        return FinishReason.TOOL_CALLS
    return FinishReason.STOP


def decode_response(body: bytes | dict[str, Any]) -> ChatResponse:
    """An engine's Response object; a failed one (or an error body) raises its error."""
    try:
        obj = load_body(body)
    except Exception as exc:  # InvalidRequest wording is for clients; this is the engine
        raise ProtocolError(f"the answer is not a JSON object: {exc}") from None
    raw = body if isinstance(body, bytes) else encode_json(body)
    error = obj.get("error")
    if error or obj.get("status") == "failed":
        raise error_from_payload({"error": error or {"message": "the response failed"}}, raw)
    output = obj.get("output")
    if not isinstance(output, list):
        raise ProtocolError("the answer has no output array")
    parts = _parts(output)
    status = obj.get("status")
    return ChatResponse(
        id=str(obj.get("id") or ""),
        model=str(obj.get("model") or ""),
        message=Message("assistant", parts),
        finish_reason=finish_from(status, obj.get("incomplete_details"), parts),
        usage=usage_from(obj.get("usage")),
        raw_reason=status if isinstance(status, str) else None,
    )

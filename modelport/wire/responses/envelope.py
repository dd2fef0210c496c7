"""What every Response object carries besides its output: ids, status, usage, and the
request's settings echoed back, as the Responses API and its SDKs expect them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from modelport.types import ChatRequest, FinishReason, Message, Thinking, ToolCall, Usage
from modelport.wire.responses.tools import (
    CUSTOM_ARGUMENT,
    ToolRef,
    tool_choice_json,
    tool_json,
    tool_refs,
)

JSONObject = dict[str, Any]
encode_json = msgspec.json.Encoder().encode

# Settings the Response object echoes, with the value an absent one reads as.
_ECHOED: tuple[tuple[str, Any], ...] = (
    ("instructions", None),
    ("max_output_tokens", None),
    ("max_tool_calls", None),
    ("metadata", {}),
    ("parallel_tool_calls", True),
    ("prompt_cache_key", None),
    ("safety_identifier", None),
    ("service_tier", "default"),
    ("store", False),
    ("temperature", 1.0),
    ("text", {"format": {"type": "text"}}),
    ("top_logprobs", 0),
    ("top_p", 1.0),
    ("truncation", "disabled"),
    ("user", None),
)


def response_id(raw: str) -> str:
    return raw if raw.startswith("resp_") else f"resp_{raw}"


def status_of(reason: FinishReason) -> tuple[str, JSONObject | None]:
    """The Response's status and incomplete_details for a finish reason."""
    if reason is FinishReason.LENGTH:
        return "incomplete", {"reason": "max_output_tokens"}
    if reason is FinishReason.CONTENT_FILTER:
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def usage_json(usage: Usage) -> JSONObject:
    return {
        "input_tokens": usage.input_tokens,
        # cache_write_tokens: the SDK's type requires it; we are never told, so 0.
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


class Echo:
    """The request's side of every Response object of one answer, worked out once."""

    __slots__ = ("fields", "refs")

    def __init__(self, request: ChatRequest | None) -> None:
        extra: Mapping[str, Any] = request.extra if request is not None else {}
        self.refs = tool_refs(extra.get("tools"), extra.get("input"))
        fields: JSONObject = {k: extra.get(k, default) for k, default in _ECHOED}
        fields["tools"] = _tools(extra, request)
        fields["tool_choice"] = _tool_choice(extra, request, self.refs)
        fields["reasoning"] = _reasoning(extra)
        self.fields = fields

    def response(
        self, *, id: str, model: str, created: int, status: str, output: list[JSONObject]
    ) -> JSONObject:
        return {
            "id": id,
            "object": "response",
            "created_at": created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "model": model,
            "output": output,
            "previous_response_id": None,
            **self.fields,
            "usage": None,
        }

    def call_json(self, call: ToolCall) -> JSONObject:
        return call_item(self.refs, call.id, call.name, encode_json(call.arguments).decode())

    def call_item(self, call_id: str, name: str, arguments: str, status: str) -> JSONObject:
        return call_item(self.refs, call_id, name, arguments, status)

    def is_custom(self, name: str) -> bool:
        ref = self.refs.get(name)
        return ref is not None and ref.custom


def custom_input(arguments: str) -> str:
    """A custom tool's free-form input from the one-argument JSON an engine wrote."""
    try:
        value = msgspec.json.decode(arguments) if arguments else {}
    except msgspec.DecodeError:
        return arguments
    got = value.get(CUSTOM_ARGUMENT) if isinstance(value, dict) else None
    return got if isinstance(got, str) else arguments


def call_item(
    refs: Mapping[str, ToolRef],
    call_id: str,
    name: str,
    arguments: str,
    status: str = "completed",
) -> JSONObject:
    """A call as its output item: `function_call`, with its namespace when it has one, or
    `custom_tool_call` with its input for a custom tool."""
    ref = refs.get(name)
    if ref is not None and ref.custom:
        item: JSONObject = {
            "type": "custom_tool_call",
            "id": f"ctc_{call_id}",
            "call_id": call_id,
            "name": ref.name,
            "input": custom_input(arguments),
        }
    else:
        item = {
            "type": "function_call",
            "id": f"fc_{call_id}",
            "call_id": call_id,
            "name": ref.name if ref is not None else name,
            "arguments": arguments,
            "status": status,
        }
    if ref is not None and ref.namespace is not None:
        item["namespace"] = ref.namespace
    return item


def _tools(extra: Mapping[str, Any], request: ChatRequest | None) -> list[Any]:
    raw = extra.get("tools")
    if isinstance(raw, list):
        return raw
    return [tool_json(t) for t in (request.tools or ())] if request is not None else []


def _tool_choice(
    extra: Mapping[str, Any], request: ChatRequest | None, refs: Mapping[str, ToolRef]
) -> Any:
    if "tool_choice" in extra and extra["tool_choice"] is not None:
        return extra["tool_choice"]
    if request is not None and request.tool_choice is not None:
        return tool_choice_json(request.tool_choice, refs)
    return "auto"


def _reasoning(extra: Mapping[str, Any]) -> JSONObject:
    raw = extra.get("reasoning")
    raw = raw if isinstance(raw, dict) else {}
    return {"effort": raw.get("effort"), "summary": raw.get("summary")}


def message_item(id: str, text: str, status: str = "completed") -> JSONObject:
    return {
        "type": "message",
        "id": id,
        "status": status,
        "role": "assistant",
        "content": [output_text(text)],
    }


def output_text(text: str) -> JSONObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(id: str, text: str, signature: str | None = None) -> JSONObject:
    item: JSONObject = {
        "type": "reasoning",
        "id": id,
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if signature:
        item["encrypted_content"] = signature
    return item


def output_items(message: Message, echo: Echo, suffix: str, status: str) -> list[JSONObject]:
    """A whole answer's message as output items: reasoning, then text, then calls."""
    items: list[JSONObject] = []
    thinking = message.thinking
    signature = next(
        (p.signature for p in message.content if isinstance(p, Thinking) and p.signature), None
    )
    if thinking or signature:
        items.append(reasoning_item(f"rs_{suffix}", thinking, signature))
    if message.text:
        items.append(message_item(f"msg_{suffix}", message.text, status))
    items.extend(echo.call_json(call) for call in message.tool_calls)
    return items

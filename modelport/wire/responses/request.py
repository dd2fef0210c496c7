"""Decoding a client's /v1/responses body into a ChatRequest, validated.

Client input: every failure is an InvalidRequest naming the field, in the shared wording
(modelport.wire.validate). What the Responses API has that the canonical request does not
is either mapped (input items, instructions, tools, text.format, reasoning.effort, ...),
left to the answer's echo (metadata, store, include, prompt_cache_key, ...), or refused by
name (previous_response_id, conversation, background, prompt: they need state this gateway
does not keep). The client's own fields (`input` too) stay in `extra`, which the answer's
encoder reads back (echo, namespaced and custom tool names); what an engine of another
dialect gets of them is the field table's decision (`fields.py`, docs/fields.md), and
passthrough relays the body as sent.
"""

from __future__ import annotations

from typing import Any

from modelport.types import ChatRequest, Reasoning
from modelport.wire.responses.fields import FIELDS
from modelport.wire.responses.items import decode_input
from modelport.wire.responses.tools import decode_tool_choice, decode_tools
from modelport.wire.validate import (
    JSONObject,
    an_object,
    check_values,
    fail,
    load_body,
    non_empty_text,
    optional_bool,
    optional_int,
    optional_number,
    optional_text,
    required,
    unsupported,
)

# Fields that name state kept between requests; this gateway keeps none.
_STATEFUL = {
    "previous_response_id": "responses are not stored here; send the whole conversation "
    "as `input` items (with store: false)",
    "conversation": "conversations are not stored here; send the whole conversation "
    "as `input` items",
    "prompt": "stored prompt templates are not available here; send `instructions` and "
    "`input` instead",
}


def _refuse_state(obj: JSONObject) -> None:
    for key, why in _STATEFUL.items():
        if obj.get(key) is not None:
            fail(key, f"is not supported: {why}")
    if obj.get("background"):
        fail("background", "is not supported: background responses need storage")


def _response_format(value: Any) -> dict[str, Any] | None:
    """`text.format` as a chat-completions `response_format`."""
    if value is None:
        return None
    text = an_object(value, "text")
    fmt = text.get("format")
    if fmt is None:
        return None
    fmt = an_object(fmt, "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        unsupported("text.format.type", kind)
    schema = an_object(required(fmt, "schema", "text.format.schema"), "text.format.schema")
    spec: dict[str, Any] = {"name": optional_text(fmt, "name", "text.format.name") or "response"}
    description = optional_text(fmt, "description", "text.format.description")
    if description is not None:
        spec["description"] = description
    spec["schema"] = schema
    strict = optional_bool(fmt, "strict", "text.format.strict")
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def _reasoning(value: Any) -> Reasoning | None:
    """`reasoning.effort` is canonical; `summary` is accepted (thinking comes back as the
    reasoning item's summary whenever the engine thinks)."""
    if value is None:
        return None
    reasoning = an_object(value, "reasoning")
    effort = optional_text(reasoning, "effort", "reasoning.effort")
    optional_text(reasoning, "summary", "reasoning.summary")
    return Reasoning(effort=effort) if effort else None


def _system(obj: JSONObject, lifted: list[str]) -> str | None:
    instructions = optional_text(obj, "instructions", "instructions")
    parts = ([instructions] if instructions else []) + lifted
    return "\n\n".join(parts) if parts else None


def decode_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A client's /v1/responses body, validated."""
    obj = load_body(body)
    check_values(FIELDS.values, obj)
    model = non_empty_text(obj, "model", "model")
    _refuse_state(obj)
    messages, lifted, offered = decode_input(required(obj, "input", "input"))
    optional_bool(obj, "store", "store")
    tools = decode_tools(obj.get("tools")) + offered
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        system=_system(obj, lifted),
        tools=tuple(tools) or None,
        tool_choice=decode_tool_choice(obj.get("tool_choice")),
        parallel_tool_calls=optional_bool(obj, "parallel_tool_calls", "parallel_tool_calls"),
        max_tokens=optional_int(obj, "max_output_tokens", "max_output_tokens"),
        temperature=optional_number(obj, "temperature", "temperature"),
        top_p=optional_number(obj, "top_p", "top_p"),
        response_format=_response_format(obj.get("text")),
        reasoning=_reasoning(obj.get("reasoning")),
        stream=bool(optional_bool(obj, "stream", "stream")),
        extra={k: v for k, v in obj.items() if k not in ("model", "stream")},
    )

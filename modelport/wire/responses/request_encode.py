"""Encoding a ChatRequest as a /v1/responses body, for an engine that serves it."""

from __future__ import annotations

from typing import Any

from modelport.types import ChatRequest, Image, Message, Text, Thinking, ToolCall, ToolResult
from modelport.wire.responses.envelope import call_item, encode_json
from modelport.wire.responses.tools import ToolRef, tool_choice_json, tool_json, tool_refs

JSONObject = dict[str, Any]


def _part_json(part: Text | Image, role: str) -> JSONObject:
    if isinstance(part, Text):
        kind = "output_text" if role == "assistant" else "input_text"
        return {"type": kind, "text": part.text}
    if part.data is not None:
        url = f"data:{part.media_type or ''};base64,{part.data}"
    else:
        url = part.url or ""
    return {"type": "input_image", "image_url": url, "detail": "auto"}


def _call_json(call: ToolCall, refs: dict[str, ToolRef]) -> JSONObject:
    item = call_item(refs, call.id, call.name, encode_json(call.arguments).decode())
    for key in ("id", "status"):
        item.pop(key, None)  # output-item fields; an input item needs neither
    return item


def _result_json(result: ToolResult) -> JSONObject:
    parts = result.content
    output: Any
    if len(parts) == 1 and isinstance(parts[0], Text):
        output = parts[0].text
    elif not parts:
        output = ""
    else:
        output = [_part_json(p, "user") for p in parts]
    return {"type": "function_call_output", "call_id": result.tool_call_id, "output": output}


def _items(msg: Message, refs: dict[str, ToolRef]) -> list[JSONObject]:
    """One message's items in order: runs of text and images become one message item."""
    items: list[JSONObject] = []
    run: list[JSONObject] = []
    role = "user" if msg.role == "tool" else msg.role

    def flush() -> None:
        if run:
            items.append({"type": "message", "role": role, "content": list(run)})
            run.clear()

    for part in msg.content:
        if isinstance(part, Text | Image):
            run.append(_part_json(part, role))
            continue
        flush()
        if isinstance(part, ToolCall):
            items.append(_call_json(part, refs))
        elif isinstance(part, ToolResult):
            items.append(_result_json(part))
        elif isinstance(part, Thinking) and part.text:
            summary = [{"type": "summary_text", "text": part.text}]
            items.append({"type": "reasoning", "summary": summary})
    flush()
    return items


def encode_request(req: ChatRequest) -> dict[str, Any]:
    """A JSON-ready /v1/responses body; the client's own fields in `extra` go in first, the
    modelled ones over them (tools as the flat functions the request holds)."""
    refs = tool_refs(req.extra.get("tools"), req.extra.get("input"))
    body: JSONObject = dict(req.extra)
    items: list[JSONObject] = []
    for msg in req.messages:
        items.extend(_items(msg, refs))
    options: JSONObject = {
        "instructions": req.system,
        "tools": [tool_json(t) for t in req.tools] if req.tools else None,
        "tool_choice": tool_choice_json(req.tool_choice, refs) if req.tool_choice else None,
        "parallel_tool_calls": req.parallel_tool_calls,
        "max_output_tokens": req.max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "text": _text_json(req.response_format),
        "reasoning": {"effort": req.reasoning.effort} if req.reasoning else None,
    }
    body.update({k: v for k, v in options.items() if v is not None})
    body.update(model=req.model, input=items, stream=req.stream)
    return body


def _text_json(response_format: dict[str, Any] | None) -> JSONObject | None:
    if not response_format:
        return None
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        return {"format": {"type": "json_schema", **spec}}
    return {"format": {"type": response_format.get("type", "text")}}

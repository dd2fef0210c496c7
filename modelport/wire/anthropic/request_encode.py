"""Encoding a ChatRequest as a /v1/messages body."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelport.errors import (
    InvalidRequest,
)
from modelport.types import (
    ChatRequest,
    Image,
    Message,
    Part,
    Reasoning,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from modelport.wire.anthropic.constants import (
    DEFAULT_MAX_TOKENS,
    EMPTY_SCHEMA,
    REDACTED_PREFIX,
)
from modelport.wire.validate import refused_by

# Reasoning effort (OpenAI's word) -> thinking budget, when an effort-only request meets Anthropic.
_EFFORT_BUDGET = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 32768,
}
_MIN_BUDGET = 1024
# OpenAI's effort words Anthropic lacks, as its nearest level.
_ANTHROPIC_EFFORT = {"minimal": "low"}


def encode_request(req: ChatRequest) -> dict[str, Any]:
    """The /v1/messages body for a canonical request (JSON-ready; encode it yourself)."""
    system, messages = _encode_messages(req)
    max_tokens = req.max_tokens if req.max_tokens is not None else DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": req.model, "max_tokens": max_tokens}
    if system is not None:
        body["system"] = system
    body["messages"] = messages
    if req.tools is not None:
        body["tools"] = [_encode_tool(t) for t in req.tools]
    choice = _encode_tool_choice(req.tool_choice, req.parallel_tool_calls)
    if choice is not None:
        body["tool_choice"] = choice
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop is not None:
        body["stop_sequences"] = list(req.stop)
    thinking = _encode_reasoning(req.reasoning, max_tokens)
    if thinking is not None:
        body["thinking"] = thinking
    output_config = _encode_response_format(req.response_format, req.extra.get("output_config"))
    effort = _output_effort(req.reasoning)
    if effort is not None:
        given = req.extra.get("output_config")
        base = output_config or (given if isinstance(given, dict) else {})
        output_config = {**base, **effort}
    if output_config is not None:
        body["output_config"] = output_config
    if req.stream:
        body["stream"] = True
    for key, value in req.extra.items():
        body.setdefault(key, value)
    return body


def _encode_messages(req: ChatRequest) -> tuple[str | None, list[dict[str, Any]]]:
    """System prompt and Anthropic messages; tool results join the adjacent user message.

    A system message right after a user turn stays there: the Messages API takes those
    (mid-conversation system messages). Elsewhere (before the first turn, after an assistant
    turn) the API refuses one, so it joins the system prompt instead.
    """
    system = [req.system] if req.system is not None else []
    out: list[dict[str, Any]] = []
    previous: str | None = None
    for message in req.messages:
        if message.role == "system":
            _add_system(message, system, out)
            previous = "system"
            continue
        if _joins_previous(message.role, previous, out):
            out[-1]["content"] = _as_blocks(out[-1]["content"]) + _encode_parts(message.content)
        else:
            role = "assistant" if message.role == "assistant" else "user"
            out.append({"role": role, "content": _encode_content(message.content)})
        previous = message.role
    return ("\n\n".join(system) if system else None), out


def _joins_previous(role: str, previous: str | None, out: list[dict[str, Any]]) -> bool:
    """A tool message after a user message, or a user message after tool results, shares it."""
    if not out or out[-1]["role"] != "user":
        return False
    return {role, previous} == {"user", "tool"}


def _add_system(message: Message, system: list[str], out: list[dict[str, Any]]) -> None:
    """After a user turn (or another such system message) at its place, else in `system`."""
    if out and out[-1]["role"] == "system":
        out[-1]["content"] = _as_blocks(out[-1]["content"]) + _encode_parts(message.content)
    elif out and out[-1]["role"] == "user":
        out.append({"role": "system", "content": _encode_content(message.content)})
    else:
        system.append("\n\n".join(p.text for p in message.content if isinstance(p, Text)))


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _encode_content(parts: tuple[Part, ...]) -> str | list[dict[str, Any]]:
    """A lone text part goes as a plain string, the most widely accepted shape."""
    if len(parts) == 1 and isinstance(parts[0], Text):
        return parts[0].text
    return _encode_parts(parts)


def _encode_parts(parts: Iterable[Part]) -> list[dict[str, Any]]:
    return [encode_part(p) for p in parts]


def encode_part(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        return {"type": "image", "source": _image_source(part)}
    if isinstance(part, ToolCall):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments}
    if isinstance(part, ToolResult):
        return _encode_tool_result(part)
    return _encode_thinking(part)


def _encode_thinking(part: Thinking) -> dict[str, Any]:
    if part.signature and part.signature.startswith(REDACTED_PREFIX) and not part.text:
        return {"type": "redacted_thinking", "data": part.signature[len(REDACTED_PREFIX) :]}
    block: dict[str, Any] = {"type": "thinking", "thinking": part.text}
    if part.signature is not None:
        block["signature"] = part.signature
    return block


def _encode_tool_result(part: ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
    if part.content:
        block["content"] = _encode_content(part.content)
    if part.is_error:
        block["is_error"] = True
    return block


_MAGIC = (
    ("iVBOR", "image/png"),
    ("/9j/", "image/jpeg"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
)


def _image_source(image: Image) -> dict[str, Any]:
    """base64 or url source; a data: URL (OpenAI's inline form) becomes base64."""
    if image.data is not None:
        media_type = image.media_type or _sniff_media_type(image.data)
        return {"type": "base64", "media_type": media_type, "data": image.data}
    if image.url is None:
        raise InvalidRequest("image has neither data nor url")
    if image.url.startswith("data:"):
        head, _, data = image.url.partition(",")
        media_type = head[5:].split(";")[0] or _sniff_media_type(data)
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": image.url}


def _sniff_media_type(data: str) -> str:
    """Anthropic requires a media type for inline images; the base64 magic tells most of them."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    return "image/png"


def _encode_tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = tool.parameters or dict(EMPTY_SCHEMA)
    return out


def _encode_tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    """Anthropic carries parallel_tool_calls inside tool_choice; alone it needs an `auto`."""
    if choice is None and parallel is None:
        return None
    mode = choice.mode if choice is not None else "auto"
    kind = {"auto": "auto", "required": "any", "named": "tool", "none": "none"}[mode]
    out: dict[str, Any] = {"type": kind}
    if mode == "named":
        out["name"] = choice.name if choice is not None and choice.name else ""
    if parallel is not None and kind != "none":  # `none` takes no such field
        out["disable_parallel_tool_use"] = not parallel
    return out


def _encode_reasoning(reasoning: Reasoning | None, max_tokens: int) -> dict[str, Any] | None:
    """adaptive and a budget go as they are; an effort alone (an OpenAI client's) becomes a
    budget that fits under max_tokens; "none" sends no thinking (off by default)."""
    if reasoning is None:
        return None
    display = {"display": reasoning.display} if reasoning.display else {}
    if reasoning.adaptive and reasoning.effort != "none":
        return {"type": "adaptive", **display}
    if reasoning.budget_tokens is not None:
        return {"type": "enabled", "budget_tokens": reasoning.budget_tokens, **display}
    if reasoning.effort in (None, "none"):
        return None
    budget = min(_EFFORT_BUDGET.get(reasoning.effort or "", 8192), max_tokens - 1)
    if budget < _MIN_BUDGET:
        return None
    return {"type": "enabled", "budget_tokens": budget, **display}


def _output_effort(reasoning: Reasoning | None) -> dict[str, str] | None:
    """`output_config.effort` beside adaptive or budgeted thinking, as an Anthropic client
    sent it; an effort alone was already turned into a budget."""
    if reasoning is None or reasoning.effort in (None, "none"):
        return None
    if not reasoning.adaptive and reasoning.budget_tokens is None:
        return None
    return {"effort": _ANTHROPIC_EFFORT.get(reasoning.effort or "", reasoning.effort or "")}


def _encode_response_format(fmt: dict[str, Any] | None, rest: Any) -> dict[str, Any] | None:
    """json_schema maps onto output_config.format; Anthropic has no plain JSON mode."""
    if fmt is None or fmt.get("type") == "text":
        return None
    schema = (
        (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    )
    if not isinstance(schema, dict):
        refused_by(
            "response_format.type", fmt.get("type"), "anthropic", "use json_schema with a schema"
        )
    config = dict(rest) if isinstance(rest, dict) else {}
    config["format"] = {"type": "json_schema", "schema": schema}
    return config

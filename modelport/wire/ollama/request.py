"""Encoding a ChatRequest as an /api/chat body."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelport.errors import Unsupported
from modelport.types import (
    ChatRequest,
    Image,
    Message,
    Part,
    Reasoning,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)
from modelport.wire.validate import refused_by

JSONObject = dict[str, Any]


# Keys of Ollama's `options` object (api/types.go Options and Runner). Extra fields
# with these names (seed, top_k, ... from an OpenAI body) belong there, not at top level,
# where Ollama would silently ignore them.
OPTION_KEYS = frozenset(
    {
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "top_p",
        "min_p",
        "typical_p",
        "tfs_z",
        "repeat_last_n",
        "temperature",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
        "penalize_newline",
        "stop",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "use_mmap",
        "use_mlock",
        "num_thread",
        "numa",
        "low_vram",
    }
)
# Fields the encoder owns; extra never overrides them.
_OWNED = frozenset({"model", "messages", "stream", "tools", "options"})
# Reasoning efforts Ollama takes as a `think` level (gpt-oss); other models take a bool.
_THINK_LEVELS = frozenset({"low", "medium", "high"})
# Efforts above "high" (Anthropic's "max", OpenAI's "xhigh") as the top level; "minimal"
# stays a plain `true`, as before.
_NEAREST_LEVEL = {"xhigh": "high", "max": "high"}


def encode_chat_request(req: ChatRequest, *, stream: bool) -> JSONObject:
    """The /api/chat body for a canonical request. Raises Unsupported before any I/O."""
    body: JSONObject = {
        "model": req.model,
        "messages": _messages(req),
        "stream": stream,
    }
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    think = _think(req.reasoning, req.model)
    if think is not None:
        body["think"] = think
    fmt = _format(req.response_format)
    if fmt is not None:
        body["format"] = fmt
    options = _options(req)
    if options:
        body["options"] = options
    for key, value in req.extra.items():
        if key not in _OWNED and key not in OPTION_KEYS and key not in body:
            body[key] = value
    return body


def _messages(req: ChatRequest) -> list[JSONObject]:
    names = _call_names(req.messages)
    out: list[JSONObject] = []
    if req.system:
        out.append({"role": "system", "content": req.system})
    for message in req.messages:
        out.extend(_message(message, names))
    return out


def _call_names(messages: Iterable[Message]) -> dict[str, str]:
    """Tool-call id -> tool name, so a tool result can say which tool answered."""
    return {p.id: p.name for m in messages for p in m.content if isinstance(p, ToolCall)}


def _message(message: Message, names: Mapping[str, str]) -> list[JSONObject]:
    """One canonical message as Ollama messages: each tool result is a message of its own."""
    results = [p for p in message.content if isinstance(p, ToolResult)]
    rest = [p for p in message.content if not isinstance(p, ToolResult)]
    out = [_tool_message(r, names) for r in results]
    if rest or not results:
        out.append(_plain_message(message.role, rest))
    return out


def _plain_message(role: str, parts: Sequence[Part]) -> JSONObject:
    texts = [p.text for p in parts if isinstance(p, Text)]
    entry: JSONObject = {"role": role, "content": "\n\n".join(texts)}
    thinking = "".join(p.text for p in parts if isinstance(p, Thinking))
    if thinking:
        entry["thinking"] = thinking
    images = [_image(p) for p in parts if isinstance(p, Image)]
    if images:
        entry["images"] = images
    calls = [_tool_call(p) for p in parts if isinstance(p, ToolCall)]
    if calls:
        entry["tool_calls"] = calls
    return entry


def _tool_call(call: ToolCall) -> JSONObject:
    # Newer Ollama keeps call ids and matches results by them; older builds ignore `id`.
    return {"id": call.id, "function": {"name": call.name, "arguments": call.arguments}}


def _tool_message(result: ToolResult, names: Mapping[str, str]) -> JSONObject:
    """Ollama's templates name the tool (`tool_name`); newer builds also read the call id."""
    entry: JSONObject = {
        "role": "tool",
        "content": "\n\n".join(p.text for p in result.content if isinstance(p, Text)),
        "tool_call_id": result.tool_call_id,
    }
    name = names.get(result.tool_call_id)
    if name:
        entry["tool_name"] = name
    images = [_image(p) for p in result.content if isinstance(p, Image)]
    if images:
        entry["images"] = images
    return entry


def _image(image: Image) -> str:
    """Ollama takes bare base64; a data: URL is unwrapped, a remote URL cannot be sent."""
    if image.data:
        return image.data
    url = image.url or ""
    head, sep, data = url.partition(",")
    if url.startswith("data:") and sep and head.endswith(";base64"):
        return data
    raise Unsupported("Ollama's native API takes inline (base64) images only, not image URLs")


def _tools(req: ChatRequest) -> list[JSONObject]:
    """Ollama has no tool_choice: "none" is honoured by not offering the tools at all; a
    call it cannot force (required, a named tool) is refused, not dropped (docs/fields.md)."""
    choice = req.tool_choice
    if choice is not None and choice.mode in ("required", "named") and req.tools:
        refused_by("tool_choice", choice.name or choice.mode, "ollama", "it cannot force a call")
    if not req.tools or (choice is not None and choice.mode == "none"):
        return []
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description or "",
                "parameters": t.parameters or {"type": "object", "properties": {}},
            },
        }
        for t in req.tools
    ]


def _think(reasoning: Reasoning | None, model: str) -> bool | str | None:
    """`think: true`, or a level for gpt-oss, which alone takes low/medium/high."""
    if reasoning is None:
        return None
    effort = (reasoning.effort or "").lower()
    effort = _NEAREST_LEVEL.get(effort, effort)
    if effort == "none":
        return False
    if effort in _THINK_LEVELS and "gpt-oss" in model.lower():
        return effort
    return True


def _format(response_format: Mapping[str, Any] | None) -> Any:
    """OpenAI's response_format as Ollama's `format`: a JSON schema, or "json"."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return schema if isinstance(schema, dict) else "json"
    return None


def _options(req: ChatRequest) -> JSONObject:
    """Sampling settings: extra's `options` and option-named fields, then ours on top."""
    options: JSONObject = {}
    given = req.extra.get("options")
    if isinstance(given, dict):
        options.update(given)
    options.update({k: v for k, v in req.extra.items() if k in OPTION_KEYS})
    if req.temperature is not None:
        options["temperature"] = req.temperature
    if req.top_p is not None:
        options["top_p"] = req.top_p
    if req.max_tokens is not None:
        options["num_predict"] = req.max_tokens
    if req.stop:
        options["stop"] = list(req.stop)
    return options

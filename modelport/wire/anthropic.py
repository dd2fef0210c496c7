"""Anthropic Messages API codec: requests, responses, stream events and errors.

Pure: bytes or parsed JSON in, canonical types out, and back. Decisions worth knowing:

- Tool results. A user message's `tool_result` blocks become a role "tool" message (one per
  run of consecutive results), so they map onto OpenAI tool messages; the user message's
  other blocks stay a user message, in order. Encoding merges them back into one user message.
- System. A list of system text blocks is joined with a blank line ("\\n\\n"); role "system"
  messages (other formats allow them) are folded into the system prompt when encoding.
- Usage. Canonical `input_tokens` counts every prompt token, as OpenAI's `prompt_tokens`
  does; Anthropic's `input_tokens` leaves out cache reads and cache writes, so decoding adds
  them back and encoding subtracts the cache reads. `output_tokens_details.thinking_tokens`
  is the canonical `reasoning_tokens`.
- max_tokens is required by Anthropic: a request without one is sent with DEFAULT_MAX_TOKENS.
- redacted_thinking has no canonical part: it travels as `Thinking(text="", signature=
  REDACTED_PREFIX + data)` (a ThinkingDelta of that shape in streams) and is encoded back to a
  redacted_thinking block, so a conversation sent back to Anthropic keeps it. Base64
  signatures never contain ":", so the prefix cannot collide with a real signature.
- Fields Anthropic has and the canonical request lacks (metadata, top_k, service_tier, a
  non-"enabled" `thinking`, `output_config` beside its `format`, ...) travel in `extra`.
  `cache_control` marks on blocks are dropped. Blocks and tools the canonical types cannot
  carry (documents, server tools, file sources) raise Unsupported rather than vanish.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import msgspec

from modelport.errors import (
    AuthError,
    BackendError,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    TimedOut,
    Unsupported,
)
from modelport.scrub import public_message
from modelport.types import (
    ChatRequest,
    ChatResponse,
    Done,
    Event,
    FinishReason,
    Image,
    Message,
    Part,
    Reasoning,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolResult,
    Usage,
)
from modelport.wire.errors import classify
from modelport.wire.sse import SSEDecoder, encode_sse

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "REDACTED_PREFIX",
    "StreamDecoder",
    "StreamEncoder",
    "decode_count_tokens_request",
    "decode_error",
    "decode_request",
    "decode_response",
    "decode_stream",
    "decode_stream_error",
    "encode_count_tokens_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "encode_stream",
    "http_status",
    "stop_reason_to_finish",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # sent when a canonical request has no max_tokens
REDACTED_PREFIX = "redacted_thinking:"

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode

# An empty-object schema: what a tool without parameters is sent with (Anthropic needs `type`).
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object"}

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_STOP_REASON = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
}

# Error `type` words -> HTTP status, for stream errors that arrive without one. Anthropic's,
# then llama-server's and vLLM's own names.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
    "exceed_context_size_error": 400,
    "server_error": 500,
    "not_supported_error": 501,
    "unavailable_error": 503,
    "BadRequestError": 400,
    "NotFoundError": 404,
    "InternalServerError": 500,
    "internal_error": 500,
}
_STATUS_ERROR = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}

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

_REQUEST_KEYS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "temperature",
        "top_p",
        "stop_sequences",
        "thinking",
        "stream",
        "output_config",
    }
)
_UNSUPPORTED_BLOCKS = (
    "document",
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "container_upload",
    "mcp_tool_use",
    "mcp_tool_result",
)


def stop_reason_to_finish(raw: str | None) -> FinishReason:
    """Anthropic's stop_reason in the canonical vocabulary; unknown words count as a stop."""
    if raw is None:
        return FinishReason.STOP
    return _FINISH.get(raw, FinishReason.STOP)


def _stop_reason(finish: FinishReason, raw: str | None) -> str:
    """Keep the engine's own word when it is Anthropic's and agrees with the finish reason."""
    if raw in _FINISH and _FINISH[raw] == finish:
        return raw
    return _STOP_REASON.get(finish, "end_turn")


def _mint_tool_id() -> str:
    return "toolu_" + os.urandom(12).hex()


# ---------------------------------------------------------------------------
# Request validation helpers: each failure names the field as `param`.


def _fail(param: str, problem: str) -> NoReturn:
    raise InvalidRequest(f"{param}: {problem}", param=param)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _expect(value: Any, kind: type | tuple[type, ...], name: str, param: str) -> Any:
    """`value` if it is a `kind` (bools are not numbers here), else InvalidRequest."""
    if isinstance(value, kind) and not (isinstance(value, bool) and bool not in _kinds(kind)):
        return value
    _fail(param, f"expected {name}, got {_json_type(value)}")


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _required(obj: Mapping[str, Any], key: str, param: str) -> Any:
    if key not in obj:
        _fail(param, "field required")
    return obj[key]


def _str(obj: Mapping[str, Any], key: str, param: str) -> str:
    value: str = _expect(_required(obj, key, param), str, "a string", param)
    return value


def _opt(
    obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], name: str, base: str
) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    return _expect(value, kind, name, f"{base}{key}")


def _number(obj: Mapping[str, Any], key: str) -> float | None:
    value = _opt(obj, key, (int, float), "a number", "")
    return None if value is None else float(value)


def _load_object(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(body, Mapping):
        return dict(body)
    try:
        obj = _json_decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {_json_type(obj)}")
    return obj


# ---------------------------------------------------------------------------
# Requests: decode


def decode_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A /v1/messages body as a ChatRequest; malformed input raises InvalidRequest."""
    return _decode_request(_load_object(body), count_tokens=False)


def decode_count_tokens_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A /v1/messages/count_tokens body: a messages body without max_tokens."""
    return _decode_request(_load_object(body), count_tokens=True)


def _decode_request(obj: dict[str, Any], *, count_tokens: bool) -> ChatRequest:
    model = _str(obj, "model", "model")
    max_tokens = _decode_max_tokens(obj, required=not count_tokens)
    messages = _decode_messages(_required(obj, "messages", "messages"))
    extra = {k: v for k, v in obj.items() if k not in _REQUEST_KEYS}
    reasoning = _decode_thinking(obj.get("thinking"), extra)
    response_format = _decode_output_config(obj.get("output_config"), extra)
    tool_choice, parallel = _decode_tool_choice(obj.get("tool_choice"))
    stop = _opt(obj, "stop_sequences", list, "an array of strings", "")
    stream = _opt(obj, "stream", bool, "a boolean", "")
    return ChatRequest(
        model=model,
        messages=messages,
        system=_decode_system(obj.get("system")),
        tools=_decode_tools(obj.get("tools")),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=max_tokens,
        temperature=_number(obj, "temperature"),
        top_p=_number(obj, "top_p"),
        stop=None if stop is None else _strings(stop, "stop_sequences"),
        response_format=response_format,
        reasoning=reasoning,
        stream=bool(stream),
        extra=extra,
    )


def _decode_max_tokens(obj: Mapping[str, Any], *, required: bool) -> int | None:
    if not required and obj.get("max_tokens") is None:
        return None
    value: int = _expect(
        _required(obj, "max_tokens", "max_tokens"), int, "an integer", "max_tokens"
    )
    if value < 1:
        _fail("max_tokens", "must be at least 1")
    return value


def _strings(values: list[Any], param: str) -> tuple[str, ...]:
    return tuple(_expect(v, str, "a string", f"{param}[{i}]") for i, v in enumerate(values))


def _decode_system(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    blocks = _expect(value, list, "a string or an array of text blocks", "system")
    texts = []
    for i, block in enumerate(blocks):
        param = f"system[{i}]"
        _expect(block, dict, "an object", param)
        if block.get("type") != "text":
            _fail(f"{param}.type", "system blocks must be text blocks")
        texts.append(_str(block, "text", f"{param}.text"))
    return "\n\n".join(texts)


def _decode_messages(value: Any) -> tuple[Message, ...]:
    items = _expect(value, list, "an array of messages", "messages")
    out: list[Message] = []
    for i, item in enumerate(items):
        out.extend(_decode_message(item, f"messages[{i}]"))
    return tuple(out)


def _decode_message(item: Any, param: str) -> list[Message]:
    _expect(item, dict, "an object", param)
    role = _str(item, "role", f"{param}.role")
    if role not in ("user", "assistant"):
        _fail(f"{param}.role", f"must be 'user' or 'assistant', got {role!r}")
    parts = _decode_content(_required(item, "content", f"{param}.content"), f"{param}.content")
    if role == "assistant":
        return [Message("assistant", parts)]
    return _split_tool_results(parts)


def _split_tool_results(parts: tuple[Part, ...]) -> list[Message]:
    """Runs of tool results become role "tool" messages; the rest stay user messages, in order."""
    if not parts:
        return [Message("user", ())]
    messages: list[Message] = []
    run: list[Part] = []
    for part in parts:
        if run and isinstance(part, ToolResult) != isinstance(run[0], ToolResult):
            messages.append(_run_message(run))
            run = []
        run.append(part)
    messages.append(_run_message(run))
    return messages


def _run_message(run: list[Part]) -> Message:
    return Message("tool" if isinstance(run[0], ToolResult) else "user", tuple(run))


def _decode_content(value: Any, param: str) -> tuple[Part, ...]:
    if isinstance(value, str):
        return (Text(value),)
    blocks = _expect(value, list, "a string or an array of content blocks", param)
    return tuple(_decode_block(b, f"{param}[{i}]") for i, b in enumerate(blocks))


def _decode_block(block: Any, param: str) -> Part:
    _expect(block, dict, "an object", param)
    kind = _str(block, "type", f"{param}.type")
    if kind == "text":
        return Text(_str(block, "text", f"{param}.text"))
    if kind == "image":
        return _decode_image(block, param)
    if kind == "tool_use":
        return _decode_tool_use(block, param)
    if kind == "tool_result":
        return _decode_tool_result(block, param)
    if kind == "thinking":
        signature = _opt(block, "signature", str, "a string", f"{param}.")
        return Thinking(_str(block, "thinking", f"{param}.thinking"), signature)
    if kind == "redacted_thinking":
        return Thinking("", REDACTED_PREFIX + _str(block, "data", f"{param}.data"))
    if kind in _UNSUPPORTED_BLOCKS:
        raise Unsupported(f"{param}: content blocks of type {kind!r} are not supported")
    _fail(f"{param}.type", f"unknown content block type {kind!r}")


def _decode_image(block: Mapping[str, Any], param: str) -> Image:
    source = _expect(
        _required(block, "source", f"{param}.source"), dict, "an object", f"{param}.source"
    )
    kind = _str(source, "type", f"{param}.source.type")
    if kind == "base64":
        data = _str(source, "data", f"{param}.source.data")
        return Image(data=data, media_type=_str(source, "media_type", f"{param}.source.media_type"))
    if kind == "url":
        return Image(url=_str(source, "url", f"{param}.source.url"))
    raise Unsupported(f"{param}.source: image sources of type {kind!r} are not supported")


def _decode_tool_use(block: Mapping[str, Any], param: str) -> ToolCall:
    arguments = _expect(
        _required(block, "input", f"{param}.input"), dict, "an object", f"{param}.input"
    )
    return ToolCall(
        _str(block, "id", f"{param}.id"), _str(block, "name", f"{param}.name"), arguments
    )


def _decode_tool_result(block: Mapping[str, Any], param: str) -> ToolResult:
    call_id = _str(block, "tool_use_id", f"{param}.tool_use_id")
    is_error = bool(_opt(block, "is_error", bool, "a boolean", f"{param}."))
    content = block.get("content")
    if content is None:
        return ToolResult(call_id, (), is_error)
    parts = _decode_content(content, f"{param}.content")
    kept: list[Text | Image] = []
    for i, part in enumerate(parts):
        if not isinstance(part, Text | Image):
            _fail(f"{param}.content[{i}]", "tool results hold only text and image blocks")
        kept.append(part)
    return ToolResult(call_id, tuple(kept), is_error)


def _decode_tools(value: Any) -> tuple[Tool, ...] | None:
    if value is None:
        return None
    items = _expect(value, list, "an array of tools", "tools")
    return tuple(_decode_tool(t, f"tools[{i}]") for i, t in enumerate(items))


def _decode_tool(item: Any, param: str) -> Tool:
    _expect(item, dict, "an object", param)
    kind = item.get("type")
    if kind not in (None, "custom"):
        raise Unsupported(f"{param}: server tools of type {kind!r} are not supported")
    schema = _expect(
        _required(item, "input_schema", f"{param}.input_schema"),
        dict,
        "an object",
        f"{param}.input_schema",
    )
    return Tool(
        name=_str(item, "name", f"{param}.name"),
        description=_opt(item, "description", str, "a string", f"{param}."),
        parameters={} if schema == _EMPTY_SCHEMA else schema,
    )


def _decode_tool_choice(value: Any) -> tuple[ToolChoice | None, bool | None]:
    if value is None:
        return None, None
    _expect(value, dict, "an object", "tool_choice")
    kind = _str(value, "type", "tool_choice.type")
    disable = _opt(value, "disable_parallel_tool_use", bool, "a boolean", "tool_choice.")
    parallel = None if disable is None else not disable
    if kind == "auto":
        return ToolChoice("auto"), parallel
    if kind == "any":
        return ToolChoice("required"), parallel
    if kind == "none":
        return ToolChoice("none"), parallel
    if kind == "tool":
        return ToolChoice("named", _str(value, "name", "tool_choice.name")), parallel
    _fail("tool_choice.type", f"must be auto, any, tool or none, got {kind!r}")


def _decode_thinking(value: Any, extra: dict[str, Any]) -> Reasoning | None:
    """`enabled` becomes a Reasoning budget; other kinds (disabled, adaptive) stay in extra."""
    if value is None:
        return None
    _expect(value, dict, "an object", "thinking")
    if _str(value, "type", "thinking.type") != "enabled":
        extra["thinking"] = value
        return None
    budget: int = _expect(
        _required(value, "budget_tokens", "thinking.budget_tokens"),
        int,
        "an integer",
        "thinking.budget_tokens",
    )
    return Reasoning(budget_tokens=budget)


def _decode_output_config(value: Any, extra: dict[str, Any]) -> dict[str, Any] | None:
    """A json_schema `format` becomes an OpenAI-shaped response_format; the rest stays in extra."""
    if value is None:
        return None
    _expect(value, dict, "an object", "output_config")
    fmt = value.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        extra["output_config"] = value
        return None
    schema = _expect(
        _required(fmt, "schema", "output_config.format.schema"),
        dict,
        "an object",
        "output_config.format.schema",
    )
    rest = {k: v for k, v in value.items() if k != "format"}
    if rest:
        extra["output_config"] = rest
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


# ---------------------------------------------------------------------------
# Requests: encode


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
    if output_config is not None:
        body["output_config"] = output_config
    if req.stream:
        body["stream"] = True
    for key, value in req.extra.items():
        body.setdefault(key, value)
    return body


def _encode_messages(req: ChatRequest) -> tuple[str | None, list[dict[str, Any]]]:
    """System prompt and Anthropic messages; tool results join the adjacent user message."""
    system = [req.system] if req.system is not None else []
    out: list[dict[str, Any]] = []
    previous: str | None = None
    for message in req.messages:
        if message.role == "system":
            system.append(message.text)
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


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _encode_content(parts: tuple[Part, ...]) -> str | list[dict[str, Any]]:
    """A lone text part goes as a plain string, the most widely accepted shape."""
    if len(parts) == 1 and isinstance(parts[0], Text):
        return parts[0].text
    return _encode_parts(parts)


def _encode_parts(parts: Iterable[Part]) -> list[dict[str, Any]]:
    return [_encode_part(p) for p in parts]


def _encode_part(part: Part) -> dict[str, Any]:
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
    out["input_schema"] = tool.parameters or dict(_EMPTY_SCHEMA)
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
    """A budget goes as is; an effort becomes a budget that fits under max_tokens."""
    if reasoning is None:
        return None
    if reasoning.budget_tokens is not None:
        return {"type": "enabled", "budget_tokens": reasoning.budget_tokens}
    if reasoning.effort in (None, "none"):
        return None
    budget = min(_EFFORT_BUDGET.get(reasoning.effort or "", 8192), max_tokens - 1)
    if budget < _MIN_BUDGET:
        return None
    return {"type": "enabled", "budget_tokens": budget}


def _encode_response_format(fmt: dict[str, Any] | None, rest: Any) -> dict[str, Any] | None:
    """json_schema maps onto output_config.format; Anthropic has no plain JSON mode."""
    if fmt is None or fmt.get("type") == "text":
        return None
    schema = (
        (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    )
    if not isinstance(schema, dict):
        raise Unsupported(
            f"response_format {fmt.get('type')!r} has no Anthropic equivalent; "
            "use json_schema with a schema"
        )
    config = dict(rest) if isinstance(rest, dict) else {}
    config["format"] = {"type": "json_schema", "schema": schema}
    return config


# ---------------------------------------------------------------------------
# Responses


def decode_response(body: bytes | dict[str, Any]) -> ChatResponse:
    """A non-streaming /v1/messages answer; an error body raises its BackendError."""
    obj = _load_answer(body)
    if obj.get("type") == "error":
        raise _error_from_payload(obj, raw=body)
    content = obj.get("content") or []
    if not isinstance(content, list):
        raise ProtocolError("message content is not an array", raw=_raw(body))
    stop_reason = obj.get("stop_reason")
    return ChatResponse(
        id=str(obj.get("id") or ""),
        model=str(obj.get("model") or ""),
        message=Message("assistant", tuple(_answer_parts(content, body))),
        finish_reason=stop_reason_to_finish(stop_reason),
        usage=_usage_from(obj.get("usage")),
        raw_reason=stop_reason,
    )


def _load_answer(body: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    try:
        obj = _json_decode(body)
    except msgspec.DecodeError:
        raise ProtocolError("response is not valid JSON", raw=body) from None
    if not isinstance(obj, dict):
        raise ProtocolError("response is not a JSON object", raw=body)
    return obj


def _raw(body: bytes | str | dict[str, Any]) -> str | bytes:
    return body if isinstance(body, str | bytes) else _json_encode(body)


_ANSWER_BLOCKS = frozenset({"text", "thinking", "redacted_thinking", "tool_use"})


def _answer_parts(blocks: list[Any], body: bytes | dict[str, Any]) -> list[Part]:
    """Known blocks become parts; others (server tools, newer kinds) are skipped."""
    parts: list[Part] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise ProtocolError("content block is not an object", raw=_raw(body))
        if block.get("type") not in _ANSWER_BLOCKS:
            continue
        try:
            parts.append(_decode_block(block, f"content[{i}]"))
        except InvalidRequest as exc:
            raise ProtocolError(f"malformed content block: {exc.message}", raw=_raw(body)) from None
    return parts


def _usage_from(usage: Any) -> Usage | None:
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


def _usage_body(usage: Usage | None) -> dict[str, Any]:
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


def encode_response(resp: ChatResponse) -> bytes:
    """A non-streaming /v1/messages answer. Images and tool results cannot be assistant content."""
    blocks = [
        _encode_part(p) for p in resp.message.content if isinstance(p, Text | ToolCall | Thinking)
    ]
    return _json_encode(
        {
            "id": resp.id,
            "type": "message",
            "role": "assistant",
            "model": resp.model,
            "content": blocks,
            "stop_reason": _stop_reason(resp.finish_reason, resp.raw_reason),
            "stop_sequence": None,
            "usage": _usage_body(resp.usage),
        }
    )


def encode_count_tokens_response(input_tokens: int) -> bytes:
    return _json_encode({"input_tokens": input_tokens})


def decode_count_tokens_response(body: bytes, *, backend_id: str | None = None) -> int:
    """`{"input_tokens": N}` -> N; anything else is a ProtocolError."""
    try:
        tokens = msgspec.json.decode(body).get("input_tokens")
    except (msgspec.DecodeError, AttributeError):
        tokens = None
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        raise ProtocolError("unreadable count_tokens answer", backend_id=backend_id, raw=body)
    return tokens


# ---------------------------------------------------------------------------
# Stream decoding. Frames are decoded into one flat typed struct: every event kind fits,
# fields it lacks stay None, and msgspec skips what we do not read.


class _WireUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    output_tokens_details: dict[str, Any] | None = None


class _WireMessage(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: _WireUsage | None = None


class _WireBlock(msgspec.Struct):
    type: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class _WireDelta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None
    stop_reason: str | None = None


class _WireFrame(msgspec.Struct):
    type: str | None = None
    index: int | None = None
    delta: _WireDelta | None = None
    content_block: _WireBlock | None = None
    message: _WireMessage | None = None
    usage: _WireUsage | None = None
    error: Any = None


_decode_frame = msgspec.json.Decoder(_WireFrame).decode

_KNOWN_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
)


class _OpenTool:
    """A tool_use block between its start and stop: argument fragments gather here."""

    __slots__ = ("id", "index", "input", "name", "parts")

    def __init__(self, index: int, id: str, name: str, input: Any) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.input = input
        self.parts: list[str] = []


class StreamDecoder:
    """Anthropic stream frames in, canonical events out; Done comes with message_stop."""

    def __init__(self, *, backend_id: str | None = None) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self._backend_id = backend_id
        self._tools: dict[int, _OpenTool] = {}  # by block index
        self._other_blocks: set[int] = set()  # server-tool blocks whose deltas we skip
        self._tool_count = 0
        self._usage: dict[str, int] = {}
        self._stop_reason: str | None = None
        self._done = False

    def feed(self, event: str | None, data: str) -> list[Event]:
        """One SSE frame: its `event:` name and `data:` payload."""
        if event == "error":
            raise self._stream_error(data)
        if self._done:
            return []
        try:
            frame = _decode_frame(data)
        except msgspec.ValidationError:
            return self._odd_frame(event, data)
        except msgspec.DecodeError:
            if data.strip() == "[DONE]" or (event is not None and event not in _KNOWN_EVENTS):
                return []  # vLLM ends some streams with it; unknown events may carry anything
            raise self._broken(f"stream event {event!r} is not valid JSON", data) from None
        kind = frame.type or event
        if kind == "content_block_delta":
            return self._delta(frame)
        if kind == "content_block_start":
            return self._block_start(frame)
        if kind == "content_block_stop":
            return self._block_stop(frame)
        if kind == "message_start":
            self._message_start(frame)
        elif kind == "message_delta":
            self._message_delta(frame)
        elif kind == "message_stop":
            return self._finish()
        elif kind == "error":
            raise self._stream_error(data)
        return []  # ping and events we do not know

    def close(self) -> list[Event]:
        """End of the byte stream: without message_stop this was not a complete answer."""
        if not self._done:
            raise self._broken("stream ended without message_stop")
        return []

    def _delta(self, frame: _WireFrame) -> list[Event]:
        delta = frame.delta
        if delta is None:
            return []
        kind = delta.type
        if kind == "text_delta":
            return [TextDelta(delta.text)] if delta.text is not None else []
        if kind == "input_json_delta":
            return self._arguments(frame.index, delta.partial_json or "")
        if kind == "thinking_delta":
            return [ThinkingDelta(delta.thinking)] if delta.thinking is not None else []
        if kind == "signature_delta" and delta.signature:
            return [ThinkingDelta("", delta.signature)]
        return []  # citations_delta and other kinds we do not model

    def _arguments(self, index: int | None, fragment: str) -> list[Event]:
        tool = self._tools.get(index) if index is not None else None
        if tool is None:
            if index in self._other_blocks:
                return []
            raise self._broken(
                f"input_json_delta for block {index}, which is not an open tool_use block"
            )
        if not fragment:
            return []
        tool.parts.append(fragment)
        return [ToolCallDelta(tool.index, fragment)]

    def _block_start(self, frame: _WireFrame) -> list[Event]:
        block = frame.content_block
        if block is None or frame.index is None:
            raise self._broken("content_block_start without index or content_block")
        kind = block.type
        if kind == "text":
            return [TextDelta(block.text)] if block.text else []
        if kind == "thinking":
            events: list[Event] = [ThinkingDelta(block.thinking)] if block.thinking else []
            if block.signature:
                events.append(ThinkingDelta("", block.signature))
            return events
        if kind == "redacted_thinking":
            return [ThinkingDelta("", REDACTED_PREFIX + (block.data or ""))]
        if kind == "tool_use":
            return [self._tool_start(frame.index, block)]
        self._other_blocks.add(frame.index)
        return []

    def _tool_start(self, block_index: int, block: _WireBlock) -> ToolCallStart:
        tool = _OpenTool(
            self._tool_count, block.id or _mint_tool_id(), block.name or "", block.input
        )
        self._tool_count += 1
        self._tools[block_index] = tool
        return ToolCallStart(tool.index, tool.id, tool.name)

    def _block_stop(self, frame: _WireFrame) -> list[Event]:
        tool = self._tools.pop(frame.index, None) if frame.index is not None else None
        return [self._tool_end(tool)] if tool is not None else []

    def _tool_end(self, tool: _OpenTool) -> ToolCallEnd:
        """Joined fragments parsed; with none, the input the block started with, else {}."""
        joined = "".join(tool.parts)
        if not joined:
            arguments = tool.input if isinstance(tool.input, dict) else {}
            return ToolCallEnd(tool.index, tool.id, tool.name, arguments)
        try:
            parsed: Any = _json_decode(joined)
        except msgspec.DecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise self._broken(
                f"tool call {tool.name!r} ({tool.id}) arguments are not a JSON object: "
                f"{joined[:200]!r}",
                joined,
            )
        return ToolCallEnd(tool.index, tool.id, tool.name, parsed)

    def _message_start(self, frame: _WireFrame) -> None:
        message = frame.message
        if message is None:
            return
        self.id = message.id or self.id
        self.model = message.model or self.model
        self._add_usage(message.usage)

    def _message_delta(self, frame: _WireFrame) -> None:
        if frame.delta is not None and frame.delta.stop_reason is not None:
            self._stop_reason = frame.delta.stop_reason
        self._add_usage(frame.usage)

    def _add_usage(self, usage: _WireUsage | None) -> None:
        """Counts are cumulative: the latest value of each field wins."""
        if usage is None:
            return
        for field in usage.__struct_fields__:
            value = getattr(usage, field)
            if isinstance(value, int):
                self._usage[field] = value
        details = usage.output_tokens_details
        if details is not None and isinstance(details.get("thinking_tokens"), int):
            self._usage["thinking_tokens"] = details["thinking_tokens"]

    def _finish(self) -> list[Event]:
        """message_stop: calls a sloppy engine left open are closed first, then Done."""
        events: list[Event] = [self._tool_end(t) for _, t in sorted(self._tools.items())]
        self._tools.clear()
        self._done = True
        usage = self._final_usage()
        reason = self._stop_reason
        events.append(Done(stop_reason_to_finish(reason), usage, reason))
        return events

    def _final_usage(self) -> Usage | None:
        u = self._usage
        if not u:
            return None
        cache_read = u.get("cache_read_input_tokens", 0)
        cache_write = u.get("cache_creation_input_tokens", 0)
        return Usage(
            input_tokens=u.get("input_tokens", 0) + cache_read + cache_write,
            output_tokens=u.get("output_tokens", 0),
            cache_read_tokens=cache_read,
            reasoning_tokens=u.get("thinking_tokens", 0),
        )

    def _odd_frame(self, event: str | None, data: str) -> list[Event]:
        """A frame that did not fit the typed shape: a bare error, or an event we do not know."""
        obj = _json_decode(data)
        if isinstance(obj, dict) and _looks_like_error(obj):
            raise self._stream_error(data)
        kind = obj.get("type") if isinstance(obj, dict) else None
        if (kind or event) in _KNOWN_EVENTS:
            raise self._broken(f"malformed {kind or event} event", data)
        return []

    def _broken(self, message: str, raw: str | None = None) -> ProtocolError:
        return ProtocolError(message, backend_id=self._backend_id, raw=raw)

    def _stream_error(self, data: str) -> BackendError:
        return decode_stream_error(data, backend_id=self._backend_id)


def _looks_like_error(obj: Mapping[str, Any]) -> bool:
    return obj.get("type") == "error" or "error" in obj or ("message" in obj and "code" in obj)


def decode_stream(body: bytes, *, backend_id: str | None = None) -> list[Event]:
    """A whole stream body at once: for tests and for engines that answer in one piece."""
    framer = SSEDecoder()
    decoder = StreamDecoder(backend_id=backend_id)
    events: list[Event] = []
    for frame in [*framer.feed(body), *framer.close()]:
        events.extend(decoder.feed(frame.event, frame.data))
    events.extend(decoder.close())
    return events


# ---------------------------------------------------------------------------
# Stream encoding


class _PendingCall:
    """A tool call that cannot stream yet because another tool_use block is open."""

    __slots__ = ("end", "id", "index", "name", "parts")

    def __init__(self, index: int, id: str, name: str) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.parts: list[str] = []
        self.end: ToolCallEnd | None = None


_TEXT_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


class StreamEncoder:
    """Canonical events in, Anthropic SSE bytes out.

    Anthropic blocks cannot interleave, so while one tool call streams, others (OpenAI sends
    parallel calls interleaved) wait in order, and text or thinking that arrives meanwhile
    waits until no call is open. Nothing is dropped; order across blocks may change.
    """

    def __init__(self, *, id: str, model: str, input_tokens: int = 0) -> None:
        self.id = id
        self.model = model
        self.input_tokens = input_tokens
        self._started = False
        self._finished = False
        self._block = -1  # index of the last block opened
        self._open: str | None = None  # kind of the open block: text, thinking, tool_use
        self._live: _PendingCall | None = None  # the call whose block is open
        self._live_has_arguments = False
        self._waiting: dict[int, _PendingCall] = {}
        self._held: list[TextDelta | ThinkingDelta] = []

    def encode(self, event: Event) -> bytes:
        """SSE bytes for one event; b"" when it only changes state or waits."""
        if self._finished:
            return b""
        if isinstance(event, TextDelta) and self._open == "text":
            return self._text_frame(event.text)  # the hot path: one more token of text
        out: list[bytes] = []
        if not self._started:
            out.append(self._message_start())
        self._dispatch(event, out)
        return b"".join(out)

    def error(self, err: BackendError) -> bytes:
        """An `error` frame; the stream ends with it (no message_stop follows)."""
        self._finished = True
        return encode_sse(encode_error(err), "error")

    def _dispatch(self, event: Event, out: list[bytes]) -> None:
        if isinstance(event, TextDelta | ThinkingDelta):
            if self._live is not None:
                self._held.append(event)
            else:
                self._content(event, out)
        elif isinstance(event, ToolCallStart):
            self._call_start(event, out)
        elif isinstance(event, ToolCallDelta):
            self._call_delta(event, out)
        elif isinstance(event, ToolCallEnd):
            self._call_end(event, out)
        else:
            self._done(event, out)

    def _message_start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return _frame("message_start", {"type": "message_start", "message": message})

    def _content(self, event: TextDelta | ThinkingDelta, out: list[bytes]) -> None:
        if isinstance(event, TextDelta):
            self._ensure_block("text", {"type": "text", "text": ""}, out)
            out.append(self._text_frame(event.text))
            return
        signature = event.signature
        if signature and signature.startswith(REDACTED_PREFIX) and not event.text:
            self._redacted(signature[len(REDACTED_PREFIX) :], out)
            return
        self._ensure_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
        if event.text or not signature:
            out.append(self._delta({"type": "thinking_delta", "thinking": event.text}))
        if signature:
            out.append(self._delta({"type": "signature_delta", "signature": signature}))

    def _redacted(self, data: str, out: list[bytes]) -> None:
        self._ensure_block("redacted_thinking", {"type": "redacted_thinking", "data": data}, out)
        self._close_block(out)

    def _ensure_block(self, kind: str, block: dict[str, Any], out: list[bytes]) -> None:
        if self._open == kind and kind in ("text", "thinking"):
            return  # text and thinking continue their block; tool calls always get a new one
        self._close_block(out)
        self._block += 1
        self._open = kind
        payload = {"type": "content_block_start", "index": self._block, "content_block": block}
        out.append(_frame("content_block_start", payload))

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        self._open = None
        out.append(
            _frame("content_block_stop", {"type": "content_block_stop", "index": self._block})
        )

    def _text_frame(self, text: str) -> bytes:
        return (
            _TEXT_DELTA_HEAD
            + str(self._block).encode()
            + b',"delta":{"type":"text_delta","text":'
            + _json_encode(text)
            + b"}}\n\n"
        )

    def _delta(self, delta: dict[str, Any]) -> bytes:
        payload = {"type": "content_block_delta", "index": self._block, "delta": delta}
        return _frame("content_block_delta", payload)

    # Tool calls ---------------------------------------------------------

    def _call_start(self, event: ToolCallStart, out: list[bytes]) -> None:
        call = _PendingCall(event.index, event.id or _mint_tool_id(), event.name)
        if self._live is None:
            self._open_call(call, out)
        elif event.index != self._live.index and event.index not in self._waiting:
            self._waiting[event.index] = call

    def _call_delta(self, event: ToolCallDelta, out: list[bytes]) -> None:
        if self._live is not None and event.index == self._live.index:
            self._arguments(event.arguments, out)
        elif event.index in self._waiting:
            self._waiting[event.index].parts.append(event.arguments)
        else:
            raise ProtocolError(f"arguments for tool call {event.index}, which is not open")

    def _call_end(self, event: ToolCallEnd, out: list[bytes]) -> None:
        if self._live is not None and event.index == self._live.index:
            self._close_call(event, out)
            self._drain(out)
            return
        call = self._waiting.get(event.index)
        if call is None:  # an end without a start still carries the whole call
            call = _PendingCall(event.index, event.id or _mint_tool_id(), event.name)
            self._waiting[event.index] = call
        call.end = event
        if self._live is None:
            self._drain(out)

    def _open_call(self, call: _PendingCall, out: list[bytes]) -> None:
        self._live = call
        self._live_has_arguments = False
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        self._ensure_block("tool_use", block, out)
        for part in call.parts:
            self._arguments(part, out)

    def _arguments(self, fragment: str, out: list[bytes]) -> None:
        if fragment:
            self._live_has_arguments = True
            out.append(self._delta({"type": "input_json_delta", "partial_json": fragment}))

    def _close_call(self, end: ToolCallEnd | None, out: list[bytes]) -> None:
        """Close the live call; arguments no fragment carried go as one delta first."""
        if end is not None and end.arguments and not self._live_has_arguments:
            self._arguments(_json_encode(end.arguments).decode(), out)
        self._close_block(out)
        self._live = None

    def _drain(self, out: list[bytes]) -> None:
        """Stream waiting calls in arrival order until one is still open, then held content."""
        while self._waiting:
            index = next(iter(self._waiting))
            call = self._waiting.pop(index)
            self._open_call(call, out)
            if call.end is None:
                return
            self._close_call(call.end, out)
        held, self._held = self._held, []
        for event in held:
            self._content(event, out)

    def _done(self, event: Done, out: list[bytes]) -> None:
        """Flush everything still waiting, close the last block, then the message."""
        if self._live is not None:
            self._close_call(None, out)
        while self._waiting or self._held:
            self._drain(out)
            if self._live is not None:
                self._close_call(None, out)
        self._close_block(out)
        usage = _usage_body(event.usage) if event.usage else {"output_tokens": 0}
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": _stop_reason(event.finish_reason, event.raw_reason),
                "stop_sequence": None,
            },
            "usage": usage,
        }
        out.append(_frame("message_delta", delta))
        out.append(_frame("message_stop", {"type": "message_stop"}))
        self._finished = True


def _frame(name: str, payload: dict[str, Any]) -> bytes:
    return encode_sse(_json_encode(payload), name)


def encode_stream(events: Iterable[Event], *, id: str, model: str) -> bytes:
    encoder = StreamEncoder(id=id, model=model)
    return b"".join(encoder.encode(e) for e in events)


# ---------------------------------------------------------------------------
# Errors


def decode_error(
    status: int,
    body: bytes,
    *,
    backend_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> BackendError:
    """An error answer of any engine's shape, as the matching BackendError."""
    try:
        obj: Any = _json_decode(body) if body else None
    except msgspec.DecodeError:
        obj = None
    message, kind, code = _error_fields(obj)
    if not message:
        message = body.decode("utf-8", "replace").strip()[:500] or f"HTTP {status}"
    if _model_not_found(status, message, kind):
        return ModelNotFound(message, backend_id=backend_id, raw=body)
    return classify(
        status, message, type=kind, code=code, backend_id=backend_id, headers=headers, raw=body
    )


def _model_not_found(status: int, message: str, kind: str | None) -> bool:
    """Anthropic says a model is missing as 404 not_found_error "model: <name>"; vLLM as
    NotFoundError. Neither carries the words the shared classifier looks for."""
    return (
        status == 404
        and kind in ("not_found_error", "NotFoundError")
        and "model" in message.lower()
    )


def _error_fields(obj: Any) -> tuple[str, str | None, str | int | None]:
    """(message, type, code) from any of the error shapes engines send."""
    if isinstance(obj, str):
        return obj, None, None
    if not isinstance(obj, dict):
        return "", None, None
    inner = obj.get("error")
    if isinstance(inner, str):
        return inner, None, None
    source = inner if isinstance(inner, dict) else obj
    message = source.get("message")
    if message is None and "detail" in source:  # FastAPI validation errors
        message = source["detail"]
    if not isinstance(message, str):
        message = "" if message is None else _json_encode(message).decode()
    kind = source.get("type")
    code = source.get("code")
    return (
        message,
        kind if isinstance(kind, str) and kind != "error" else None,
        code if isinstance(code, str | int) and not isinstance(code, bool) else None,
    )


def _error_from_payload(
    obj: Any, *, raw: str | bytes | dict[str, Any], backend_id: str | None = None
) -> BackendError:
    """An error without an HTTP status (stream error event, error body under 200)."""
    message, kind, code = _error_fields(obj)
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    if status is None:
        status = _ERROR_STATUS.get(kind or "", 500)
    if _model_not_found(status, message, kind):
        return ModelNotFound(message, backend_id=backend_id, raw=_raw(raw))
    return classify(
        status,
        message or "stream error",
        type=kind,
        code=code,
        backend_id=backend_id,
        raw=_raw(raw),
    )


def decode_stream_error(data: str, *, backend_id: str | None = None) -> BackendError:
    """The payload of an `error` event (official or llama-server's bare shape), classified by
    its type word, since a stream error has no HTTP status of its own."""
    try:
        obj: Any = _json_decode(data)
    except msgspec.DecodeError:
        obj = data
    return _error_from_payload(obj, raw=data, backend_id=backend_id)


def http_status(err: BackendError) -> int:
    """The status an Anthropic client expects: overloaded is 529 there, not 503."""
    return 529 if isinstance(err, Overloaded) else err.status


def _error_type(err: BackendError) -> str:
    if isinstance(err, InvalidRequest) and err.status == 413:
        return "request_too_large"
    if isinstance(err, InvalidRequest | ContextWindowExceeded | Unsupported):
        return "invalid_request_error"
    if isinstance(err, AuthError):
        return _STATUS_ERROR.get(err.status, "authentication_error")
    if isinstance(err, ModelNotFound):
        return "not_found_error"
    if isinstance(err, RateLimited):
        return "rate_limit_error"
    if isinstance(err, Overloaded):
        return "overloaded_error"
    if isinstance(err, TimedOut):
        return "timeout_error"
    return _STATUS_ERROR.get(err.status, "api_error")


def encode_error(err: BackendError) -> bytes:
    """The official error body. Only our message goes out, never the upstream raw body."""
    return _json_encode(
        {
            "type": "error",
            "error": {"type": _error_type(err), "message": public_message(err.message)},
        }
    )

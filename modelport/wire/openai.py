"""OpenAI chat-completions and embeddings codec: wire JSON <-> canonical types.

Pure: bytes and dicts in, canonical objects out, and back. Every OpenAI-compatible
engine (llama.cpp, vLLM, Ollama /v1, LM Studio, OpenRouter, Venice, OpenAI) goes
through here, so the decoders accept each engine's variant (see docs/wire.md) and the
encoders write what the official SDKs expect.

Two fields are ours, not OpenAI's: `reasoning_signature` beside `reasoning_content`
(on stream deltas, response messages and request messages) carries
`Thinking.signature`, so that an Anthropic thinking block survives a trip through
the OpenAI format. Clients and engines that do not know it ignore it.
"""

from __future__ import annotations

import base64
import secrets
import struct
import time
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import msgspec

from modelport.errors import (
    AuthError,
    BackendError,
    Cancelled,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    TimedOut,
    Unreachable,
    Unsupported,
)
from modelport.scrub import public_message
from modelport.types import (
    ChatRequest,
    ChatResponse,
    Done,
    EmbedRequest,
    EmbedResult,
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
from modelport.wire.sse import SSEDecoder

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "decode_embed_request",
    "decode_embed_response",
    "decode_error",
    "decode_request",
    "decode_response",
    "decode_stream",
    "encode_embed_request",
    "encode_embed_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "encode_stream",
    "finish_reason_from",
]

JSONObject = dict[str, Any]

# ---------------------------------------------------------------------------
# Finish reasons


_REASONS: Mapping[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}
# What we write for each canonical reason; OpenAI has no word for cancelled or error.
_WORDS: Mapping[FinishReason, str] = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
    FinishReason.CANCELLED: "stop",
    FinishReason.ERROR: "stop",
}
_OPENAI_WORDS = frozenset(("stop", "length", "tool_calls", "content_filter"))


def finish_reason_from(raw: str | None) -> FinishReason:
    """The engine's word as a canonical reason; words we do not know mean a normal stop."""
    return _REASONS.get(raw, FinishReason.STOP) if raw else FinishReason.STOP


def _finish_word(reason: FinishReason, raw: str | None) -> str:
    """Keep the engine's own word when it is an OpenAI word that means the same thing."""
    if raw in _OPENAI_WORDS and _REASONS[raw] is reason:
        return raw
    return _WORDS[reason]


# ---------------------------------------------------------------------------
# Wire structs: decoding engine output (typed, so a chunk costs one msgspec call)


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class _WireCall(msgspec.Struct):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    refusal: str | None = None
    tool_calls: list[_WireCall] | None = None


class _StreamChoice(msgspec.Struct):
    index: int | None = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _WireUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _Chunk(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[_StreamChoice] | None = None
    usage: _WireUsage | None = None
    error: Any = None


class _WireMessage(msgspec.Struct):
    content: str | list[Any] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    refusal: str | None = None
    tool_calls: list[_WireCall] | None = None


class _Choice(msgspec.Struct):
    index: int | None = 0
    message: _WireMessage | None = None
    finish_reason: str | None = None


class _Response(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: _WireUsage | None = None
    error: Any = None


_CHUNK = msgspec.json.Decoder(_Chunk)
_RESPONSE = msgspec.json.Decoder(_Response)
_ENCODER = msgspec.json.Encoder()
_encode = _ENCODER.encode


def _usage_from(wire: _WireUsage) -> Usage:
    prompt = wire.prompt_tokens_details
    completion = wire.completion_tokens_details
    return Usage(
        input_tokens=wire.prompt_tokens or 0,
        output_tokens=wire.completion_tokens or 0,
        cache_read_tokens=(prompt.cached_tokens or 0) if prompt else 0,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def _usage_json(usage: Usage) -> JSONObject:
    body: JSONObject = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    if usage.reasoning_tokens:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def _mint_id() -> str:
    """Engines such as Ollama give tool calls no id; a reply must still carry one."""
    return "call_" + secrets.token_hex(12)


def _parse_arguments(raw: str | dict[str, Any] | None, name: str) -> dict[str, Any]:
    """A call's joined argument text as an object; engine output, so failures are ProtocolError."""
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"tool call {name!r}: arguments are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"tool call {name!r}: arguments are not a JSON object")
    return value


# ---------------------------------------------------------------------------
# Errors


# The status an error type stands for, when it arrives under HTTP 200 (mid-stream).
_TYPE_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "exceed_context_size_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "server_error": 500,
    "unavailable_error": 503,
    "overloaded_error": 529,
}


def _error_fields(body: Any) -> tuple[str | None, str | None, str | int | None, str | None]:
    """message, type, code, param from any error shape engines send (see docs/wire.md)."""
    if not isinstance(body, dict):
        return (body if isinstance(body, str) and body else None), None, None, None
    inner = body.get("error")
    if isinstance(inner, str):
        return inner, None, None, None
    source = inner if isinstance(inner, dict) else body
    message = source.get("message") or source.get("detail") or body.get("detail")
    kind, code, param = source.get("type"), source.get("code"), source.get("param")
    return (
        message if isinstance(message, str) else (None if message is None else str(message)),
        kind if isinstance(kind, str) else None,
        code if isinstance(code, str | int) and not isinstance(code, bool) else None,
        param if isinstance(param, str) else None,
    )


def _status_of(type: str | None, code: str | int | None) -> int:
    """An HTTP status for an error that came under 200: its int code, else its type."""
    if isinstance(code, int) and 400 <= code < 600:
        return code
    return _TYPE_STATUS.get(type or "", 500)


def _classified(
    status: int,
    parsed: Any,
    raw: str | bytes,
    *,
    backend_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> BackendError:
    message, kind, code, param = _error_fields(parsed)
    if status < 400:  # an error under 200: a stream chunk or an odd engine
        status = _status_of(kind, code)
    err = classify(
        status,
        message or f"HTTP {status}",
        type=kind,
        code=code,
        backend_id=backend_id,
        headers=headers,
        raw=raw,
    )
    if isinstance(err, InvalidRequest) and param:
        err.param = param
    return err


def decode_error(
    status: int,
    body: bytes,
    *,
    backend_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> BackendError:
    """An engine's error answer as our error class; any body shape, JSON or not."""
    try:
        parsed: Any = msgspec.json.decode(body) if body.strip() else None
    except msgspec.DecodeError:
        parsed = body.decode("utf-8", "replace").strip()
    return _classified(status, parsed, body, backend_id=backend_id, headers=headers)


def _payload_error(payload: Any, raw: str | bytes) -> BackendError:
    """The `error` member of a stream chunk or of a 200 response, classified."""
    return _classified(200, {"error": payload}, raw)


# type, code by class; the first match in this order wins (subclasses first).
_ERROR_SHAPES: tuple[tuple[type[BackendError], str, str | None], ...] = (
    (ContextWindowExceeded, "invalid_request_error", "context_length_exceeded"),
    (ModelNotFound, "invalid_request_error", "model_not_found"),
    (InvalidRequest, "invalid_request_error", None),
    (Unsupported, "invalid_request_error", "unsupported"),
    (RateLimited, "rate_limit_error", "rate_limit_exceeded"),
    (Overloaded, "server_error", "service_unavailable"),
    (TimedOut, "server_error", "timeout"),
    (Unreachable, "server_error", "backend_unreachable"),
    (ProtocolError, "server_error", "bad_upstream_response"),
    (Cancelled, "server_error", "cancelled"),
)
_AUTH_CODES: Mapping[int, str] = {
    401: "invalid_api_key",
    402: "insufficient_quota",
    403: "permission_denied",
}


def _error_type_code(err: BackendError) -> tuple[str, str | None]:
    if isinstance(err, AuthError):
        return "authentication_error", _AUTH_CODES.get(err.status, "invalid_api_key")
    for cls, kind, code in _ERROR_SHAPES:
        if isinstance(err, cls):
            return kind, code
    return "server_error", None


def encode_error(err: BackendError) -> bytes:
    """The OpenAI error body for `err`: message, type, param, code; nothing internal."""
    kind, code = _error_type_code(err)
    param = err.param if isinstance(err, InvalidRequest) else None
    body = {"message": public_message(err.message), "type": kind, "param": param, "code": code}
    return _encode({"error": body})


# ---------------------------------------------------------------------------
# Request validation helpers: client input, so failures are InvalidRequest naming the field


def _fail(message: str, param: str) -> NoReturn:
    raise InvalidRequest(message, param=param or None)


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _object(value: Any, path: str) -> JSONObject:
    if not isinstance(value, dict):
        _fail(f"{path or 'body'} must be an object", path)
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(f"{path} must be an array", path)
    return value


def _str(obj: JSONObject, key: str, path: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            _fail(f"{_at(path, key)} is required", _at(path, key))
        return None
    if not isinstance(value, str):
        _fail(f"{_at(path, key)} must be a string", _at(path, key))
    return value


def _required_str(obj: JSONObject, key: str, path: str) -> str:
    value = _str(obj, key, path, required=True)
    assert value is not None  # _str raised otherwise
    return value


def _int(obj: JSONObject, key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(f"{key} must be an integer", key)
    return value


def _float(obj: JSONObject, key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        _fail(f"{key} must be a number", key)
    return float(value)


def _bool(obj: JSONObject, key: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        _fail(f"{key} must be a boolean", key)
    return value


def _load_body(body: bytes | JSONObject) -> JSONObject:
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    return _object(body, "")


# ---------------------------------------------------------------------------
# Request: content parts


def _data_url(url: str) -> Image:
    """`data:<type>;base64,<data>` becomes an inline image; any other data URL stays a URL."""
    head, sep, data = url[5:].partition(",")
    if sep and head.endswith(";base64"):
        media_type = head[: -len(";base64")]
        return Image(data=data, media_type=media_type or None)
    return Image(url=url)


def _image_part(part: JSONObject, path: str) -> Image:
    raw = part.get("image_url")
    url = raw.get("url") if isinstance(raw, dict) else raw
    if not isinstance(url, str) or not url:
        _fail(f"{path}.image_url.url must be a string", f"{path}.image_url.url")
    return _data_url(url) if url.startswith("data:") else Image(url=url)


def _content_part(value: Any, path: str) -> Text | Image:
    part = _object(value, path)
    kind = part.get("type")
    if kind in ("text", "refusal"):
        return Text(_required_str(part, kind, path))
    if kind == "image_url":
        return _image_part(part, path)
    _fail(f"{path}.type {kind!r} is not supported", f"{path}.type")


def _content(value: Any, path: str) -> tuple[Text | Image, ...]:
    """String or array of parts; null is no content."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (Text(value),)
    if isinstance(value, list):
        return tuple(_content_part(p, _at(path, i)) for i, p in enumerate(value))
    _fail(f"{path} must be a string or an array of content parts", path)


def _text_only(value: Any, path: str) -> str:
    """System and developer content: text, however it is split into parts."""
    parts = _content(value, path)
    if any(isinstance(p, Image) for p in parts):
        _fail(f"{path} may only contain text", path)
    return "".join(p.text for p in parts if isinstance(p, Text))


# ---------------------------------------------------------------------------
# Request: messages


def _request_arguments(raw: Any, path: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        _fail(f"{path} must be a JSON string", path)
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        _fail(f"{path} is not valid JSON", path)
    if not isinstance(value, dict):
        _fail(f"{path} must encode a JSON object", path)
    return value


def _tool_call(value: Any, path: str) -> ToolCall:
    call = _object(value, path)
    call_id = _required_str(call, "id", path)
    function = _object(call.get("function"), _at(path, "function"))
    name = _required_str(function, "name", _at(path, "function"))
    arguments = _request_arguments(function.get("arguments"), f"{path}.function.arguments")
    return ToolCall(call_id, name, arguments)


def _assistant(msg: JSONObject, path: str) -> Message:
    parts: list[Part] = []
    thinking = _str(msg, "reasoning_content", path) or _str(msg, "reasoning", path)
    signature = _str(msg, "reasoning_signature", path)
    if thinking or signature:
        parts.append(Thinking(thinking or "", signature))
    content = msg.get("content")
    if content != "":
        parts.extend(_content(content, _at(path, "content")))
    calls = msg.get("tool_calls")
    if calls is not None:
        calls_path = _at(path, "tool_calls")
        parts.extend(
            _tool_call(c, _at(calls_path, i)) for i, c in enumerate(_list(calls, calls_path))
        )
    return Message("assistant", tuple(parts))


def _tool_result(msg: JSONObject, path: str) -> ToolResult:
    call_id = _required_str(msg, "tool_call_id", path)
    content = msg.get("content")
    return ToolResult(call_id, _content("" if content is None else content, _at(path, "content")))


def _user(msg: JSONObject, path: str) -> Message:
    content = msg.get("content")
    if content is None:
        _fail(f"{path}.content is required", _at(path, "content"))
    return Message("user", _content(content, _at(path, "content")))


def _messages(value: Any) -> tuple[tuple[Message, ...], str | None]:
    """Messages, with system and developer messages lifted out into one system prompt."""
    if value is None:
        _fail("messages is required", "messages")
    items = _list(value, "messages")
    if not items:
        _fail("messages must not be empty", "messages")
    messages: list[Message] = []
    system: list[str] = []
    for i, item in enumerate(items):
        path = _at("messages", i)
        msg = _object(item, path)
        role = _required_str(msg, "role", path)
        if role in ("system", "developer"):
            system.append(_text_only(msg.get("content"), _at(path, "content")))
        elif role == "user":
            messages.append(_user(msg, path))
        elif role == "assistant":
            messages.append(_assistant(msg, path))
        elif role == "tool":
            _add_tool_result(messages, _tool_result(msg, path))
        else:
            _fail(f"{path}.role {role!r} is not supported", _at(path, "role"))
    return tuple(messages), ("\n\n".join(system) if system else None)


def _add_tool_result(messages: list[Message], result: ToolResult) -> None:
    """Consecutive tool messages answer one assistant turn: keep them in one message."""
    if messages and messages[-1].role == "tool":
        messages[-1] = Message("tool", (*messages[-1].content, result))
    else:
        messages.append(Message("tool", (result,)))


# ---------------------------------------------------------------------------
# Request: tools and options


def _tool(value: Any, path: str) -> Tool:
    entry = _object(value, path)
    kind = entry.get("type", "function")
    if kind != "function":
        _fail(f"{path}.type {kind!r} is not supported", _at(path, "type"))
    fpath = _at(path, "function")
    function = _object(entry.get("function"), fpath)
    name = _required_str(function, "name", fpath)
    description = _str(function, "description", fpath)
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {}
    return Tool(name, description, _object(parameters, _at(fpath, "parameters")))


def _tools(value: Any) -> tuple[Tool, ...] | None:
    if value is None:
        return None
    tools = tuple(_tool(t, _at("tools", i)) for i, t in enumerate(_list(value, "tools")))
    return tools or None


def _tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    if isinstance(value, dict) and value.get("type") == "function":
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return ToolChoice("named", name)
        _fail("tool_choice.function.name must be a string", "tool_choice.function.name")
    _fail(
        'tool_choice must be "auto", "none", "required" or {"type": "function", ...}',
        "tool_choice",
    )


def _stop(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    _fail("stop must be a string or an array of strings", "stop")


def _response_format(value: Any) -> dict[str, Any] | None:
    return None if value is None else _object(value, "response_format")


_REQUEST_KEYS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "response_format",
        "reasoning_effort",
        "stream",
        "stream_options",  # dropped: each backend asks for the usage it needs
    }
)


def decode_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A client's chat-completions body, validated; unknown keys travel in `extra`."""
    obj = _load_body(body)
    model = _str(obj, "model", "", required=True)
    if not model:
        _fail("model is required", "model")
    messages, system = _messages(obj.get("messages"))
    effort = _str(obj, "reasoning_effort", "")
    max_tokens = _int(obj, "max_completion_tokens")
    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=_tools(obj.get("tools")),
        tool_choice=_tool_choice(obj.get("tool_choice")),
        parallel_tool_calls=_bool(obj, "parallel_tool_calls"),
        max_tokens=max_tokens if max_tokens is not None else _int(obj, "max_tokens"),
        temperature=_float(obj, "temperature"),
        top_p=_float(obj, "top_p"),
        stop=_stop(obj.get("stop")),
        response_format=_response_format(obj.get("response_format")),
        reasoning=Reasoning(effort=effort) if effort else None,
        stream=bool(_bool(obj, "stream")),
        extra={k: v for k, v in obj.items() if k not in _REQUEST_KEYS},
    )


# ---------------------------------------------------------------------------
# Request encoding


def _image_json(image: Image) -> JSONObject:
    if image.data is not None:
        url = f"data:{image.media_type or ''};base64,{image.data}"
    else:
        url = image.url or ""
    return {"type": "image_url", "image_url": {"url": url}}


def _parts_json(parts: Iterable[Text | Image]) -> str | list[JSONObject]:
    """A single text is a plain string, as every engine accepts; anything else an array."""
    items = list(parts)
    if len(items) == 1 and isinstance(items[0], Text):
        return items[0].text
    return [
        {"type": "text", "text": p.text} if isinstance(p, Text) else _image_json(p) for p in items
    ]


def _call_json(call: ToolCall) -> JSONObject:
    arguments = _encode(call.arguments).decode()
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _assistant_json(msg: Message) -> JSONObject:
    content = [p for p in msg.content if isinstance(p, Text | Image)]
    calls = msg.tool_calls
    out: JSONObject = {"role": "assistant"}
    if content:
        out["content"] = _parts_json(content)
    else:
        out["content"] = None if calls else ""
    thinking = [p for p in msg.content if isinstance(p, Thinking)]
    if thinking:
        out["reasoning_content"] = "".join(p.text for p in thinking)
        signature = next((p.signature for p in reversed(thinking) if p.signature), None)
        if signature:
            out["reasoning_signature"] = signature
    if calls:
        out["tool_calls"] = [_call_json(c) for c in calls]
    return out


def _results_json(msg: Message) -> list[JSONObject]:
    """Each ToolResult is its own tool message; other parts follow as a user message."""
    out: list[JSONObject] = [
        {"role": "tool", "tool_call_id": r.tool_call_id, "content": _parts_json(r.content)}
        for r in msg.content
        if isinstance(r, ToolResult)
    ]
    rest = [p for p in msg.content if isinstance(p, Text | Image)]
    if rest:
        out.append({"role": "user", "content": _parts_json(rest)})
    return out


def _message_json(msg: Message) -> list[JSONObject]:
    if msg.role == "assistant":
        return [_assistant_json(msg)]
    if msg.role in ("tool", "user"):
        return _results_json(msg) if msg.role == "tool" or _has_results(msg) else [_user_json(msg)]
    return [{"role": "system", "content": msg.text}]


def _has_results(msg: Message) -> bool:
    return any(isinstance(p, ToolResult) for p in msg.content)


def _user_json(msg: Message) -> JSONObject:
    parts = [p for p in msg.content if isinstance(p, Text | Image)]
    return {"role": "user", "content": _parts_json(parts) if parts else ""}


def _tool_choice_json(choice: ToolChoice) -> str | JSONObject:
    if choice.mode == "named":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _tool_json(tool: Tool) -> JSONObject:
    function: JSONObject = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = tool.parameters
    return {"type": "function", "function": function}


def _effort(reasoning: Reasoning) -> str | None:
    """OpenAI speaks effort; a thinking budget from Anthropic is turned into the nearest one."""
    if reasoning.effort or reasoning.budget_tokens is None:
        return reasoning.effort
    if reasoning.budget_tokens < 4096:
        return "low"
    return "medium" if reasoning.budget_tokens < 16384 else "high"


def _options_json(req: ChatRequest) -> JSONObject:
    candidates: JSONObject = {
        "tools": [_tool_json(t) for t in req.tools] if req.tools else None,
        "tool_choice": _tool_choice_json(req.tool_choice) if req.tool_choice else None,
        "parallel_tool_calls": req.parallel_tool_calls,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "stop": list(req.stop) if req.stop is not None else None,
        "response_format": req.response_format,
        "reasoning_effort": _effort(req.reasoning) if req.reasoning else None,
    }
    return {k: v for k, v in candidates.items() if v is not None}


def encode_request(req: ChatRequest) -> dict[str, Any]:
    """A JSON-ready chat-completions body; `extra` keys go in, never over modelled ones."""
    messages: list[JSONObject] = []
    if req.system is not None:
        messages.append({"role": "system", "content": req.system})
    for msg in req.messages:
        messages.extend(_message_json(msg))
    body: JSONObject = dict(req.extra)
    body.update(model=req.model, messages=messages, **_options_json(req), stream=req.stream)
    return body


# ---------------------------------------------------------------------------
# Responses


def _decode_struct(decoder: msgspec.json.Decoder[Any], kind: type[Any], body: Any) -> Any:
    """Engine output into a wire struct; what we cannot read is a ProtocolError."""
    try:
        if isinstance(body, bytes | bytearray | memoryview | str):
            return decoder.decode(body)
        return msgspec.convert(body, kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raw = body if isinstance(body, bytes | str) else None
        raise ProtocolError(
            f"unreadable OpenAI {kind.__name__.strip('_')}: {exc}", raw=raw
        ) from None


def _content_text(content: str | list[Any] | None) -> str:
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return content or ""


def _response_parts(msg: _WireMessage) -> tuple[Part, ...]:
    parts: list[Part] = []
    thinking = msg.reasoning_content or msg.reasoning
    if thinking or msg.reasoning_signature:
        parts.append(Thinking(thinking or "", msg.reasoning_signature))
    text = _content_text(msg.content) or msg.refusal
    if text:
        parts.append(Text(text))
    for call in msg.tool_calls or ():
        function = call.function or _Function()
        name = function.name or ""
        parts.append(
            ToolCall(call.id or _mint_id(), name, _parse_arguments(function.arguments, name))
        )
    return tuple(parts)


def decode_response(body: bytes | dict[str, Any]) -> ChatResponse:
    """A non-streaming chat.completion; an `error` member raises the classified error."""
    resp: _Response = _decode_struct(_RESPONSE, _Response, body)
    if resp.error is not None:
        raise _payload_error(resp.error, body if isinstance(body, bytes) else _encode(body))
    choice = next((c for c in resp.choices or () if not c.index), None)
    if choice is None or choice.message is None:
        raise ProtocolError("response has no choices[0].message")
    return ChatResponse(
        id=resp.id or "",
        model=resp.model or "",
        message=Message("assistant", _response_parts(choice.message)),
        finish_reason=finish_reason_from(choice.finish_reason),
        usage=_usage_from(resp.usage) if resp.usage else None,
        raw_reason=choice.finish_reason,
    )


def _message_out(msg: Message) -> JSONObject:
    out: JSONObject = {"role": "assistant", "content": msg.text if _has_text(msg) else None}
    thinking = [p for p in msg.content if isinstance(p, Thinking)]
    if thinking:
        out["reasoning_content"] = "".join(p.text for p in thinking)
        signature = next((p.signature for p in reversed(thinking) if p.signature), None)
        if signature:
            out["reasoning_signature"] = signature
    if msg.tool_calls:
        out["tool_calls"] = [_call_json(c) for c in msg.tool_calls]
    return out


def _has_text(msg: Message) -> bool:
    return any(isinstance(p, Text) for p in msg.content)


def encode_response(resp: ChatResponse, *, created: int | None = None) -> bytes:
    """A chat.completion object as the official SDKs read it."""
    body: JSONObject = {
        "id": resp.id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": resp.model,
        "choices": [
            {
                "index": 0,
                "message": _message_out(resp.message),
                "finish_reason": _finish_word(resp.finish_reason, resp.raw_reason),
                "logprobs": None,
            }
        ],
    }
    if resp.usage is not None:
        body["usage"] = _usage_json(resp.usage)
    return _encode(body)


# ---------------------------------------------------------------------------
# Stream decoding (the hot path: one call per token)


class _OpenCall:
    """A tool call being assembled from fragments; Start waits until its name is known."""

    __slots__ = ("arguments", "id", "name", "started")

    def __init__(self, id: str | None) -> None:
        self.id = id or _mint_id()
        self.name: str | None = None
        self.arguments: list[str] = []
        self.started = False


class StreamDecoder:
    """OpenAI stream chunks in, canonical events out; feed one SSE data payload at a time."""

    __slots__ = ("_calls", "_done", "_finish", "_last_index", "_usage", "id", "model")

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self._calls: dict[int, _OpenCall] = {}
        self._last_index: int | None = None
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._done = False

    def feed(self, data: str) -> list[Event]:
        if self._done:
            return []
        if data == "[DONE]":
            if self._finish is None:
                raise ProtocolError("stream sent [DONE] without a finish_reason")
            return self._finish_events()
        try:
            chunk = _CHUNK.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if not data.strip():  # an empty keep-alive `data:` line
                return []
            raise ProtocolError(f"unreadable stream chunk: {exc}", raw=data) from None
        if chunk.error is not None:
            raise _payload_error(chunk.error, data)
        if self.id is None:
            self.id = chunk.id
        if self.model is None:
            self.model = chunk.model
        if chunk.usage is not None:
            self._usage = _usage_from(chunk.usage)
        events: list[Event] = []
        for choice in chunk.choices or ():
            if not choice.index:
                self._choice(choice, events)
        return events

    def close(self) -> list[Event]:
        """At end of input: the final Done if a finish was seen, else the stream was cut."""
        if self._done:
            return []
        if self._finish is None:
            raise ProtocolError("stream ended without a finish")
        return self._finish_events()

    def _choice(self, choice: _StreamChoice, events: list[Event]) -> None:
        delta = choice.delta
        if delta is not None:
            thinking = delta.reasoning_content or delta.reasoning
            if thinking or delta.reasoning_signature:
                events.append(ThinkingDelta(thinking or "", delta.reasoning_signature))
            text = delta.content or delta.refusal
            if text:
                events.append(TextDelta(text))
            if delta.tool_calls:
                for fragment in delta.tool_calls:
                    self._fragment(fragment, events)
        if choice.finish_reason and self._finish is None:
            self._finish = choice.finish_reason
            self._end_calls(events)

    def _fragment(self, fragment: _WireCall, events: list[Event]) -> None:
        index = self._index_of(fragment)
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _OpenCall(fragment.id)
        function = fragment.function
        if function is None:
            return
        if call.name is None and function.name:
            call.name = function.name
        arguments = function.arguments
        if isinstance(arguments, dict):
            arguments = _encode(arguments).decode()
        if arguments:
            call.arguments.append(arguments)
        if not call.started and call.name is not None:
            call.started = True
            events.append(ToolCallStart(index, call.id, call.name))
            if call.arguments:
                events.append(ToolCallDelta(index, "".join(call.arguments)))
        elif call.started and arguments:
            events.append(ToolCallDelta(index, arguments))

    def _index_of(self, fragment: _WireCall) -> int:
        """The fragment's index; engines that omit it mean a new call when the id is new."""
        index = fragment.index
        if index is None:
            known = {c.id for c in self._calls.values()}
            if (fragment.id and fragment.id not in known) or self._last_index is None:
                index = len(self._calls)
            else:
                index = self._last_index
        self._last_index = index
        return index

    def _end_calls(self, events: list[Event]) -> None:
        for index in sorted(self._calls):
            call = self._calls[index]
            if call.name is None:
                raise ProtocolError(f"tool call at index {index} has no function name")
            arguments = _parse_arguments("".join(call.arguments), call.name)
            events.append(ToolCallEnd(index, call.id, call.name, arguments))
        self._calls.clear()

    def _finish_events(self) -> list[Event]:
        events: list[Event] = []
        self._end_calls(events)
        raw = self._finish
        events.append(Done(finish_reason_from(raw), self._usage, raw))
        self._done = True
        return events


def decode_stream(body: bytes) -> list[Event]:
    """A whole SSE body (a test capture, a buffered reply) as events."""
    framer = SSEDecoder()
    decoder = StreamDecoder()
    events: list[Event] = []
    for frame in [*framer.feed(body), *framer.close()]:
        if frame.event == "error":
            raise _payload_error(_json_or_text(frame.data), frame.data)
        events.extend(decoder.feed(frame.data))
    events.extend(decoder.close())
    return events


def _json_or_text(data: str) -> Any:
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data
    return value.get("error", value) if isinstance(value, dict) else value


# ---------------------------------------------------------------------------
# Stream encoding


class StreamEncoder:
    """Canonical events in, OpenAI SSE bytes out, framed as OpenAI itself frames them."""

    __slots__ = ("_done", "_head", "_include_usage", "_index", "_sent", "_started", "_tail")

    def __init__(
        self, *, id: str, model: str, created: int | None = None, include_usage: bool = True
    ) -> None:
        stamp = int(time.time()) if created is None else created
        head = _encode(
            {"id": id, "object": "chat.completion.chunk", "created": stamp, "model": model}
        )
        # Every chunk shares this prefix; only the choices (or usage) differ.
        self._head = b"data: " + head[:-1] + b","
        self._tail = b"\n\n"
        self._include_usage = include_usage
        self._started = False
        self._done = False
        self._index: dict[int, int] = {}  # canonical tool index -> wire index
        self._sent: set[int] = set()  # wire indices whose arguments went out

    def encode(self, event: Event) -> bytes:
        if self._done:
            return b""
        out = b""
        if not self._started:
            self._started = True
            out = self._delta({"role": "assistant", "content": ""})
        return out + self._event(event)

    def error(self, err: BackendError) -> bytes:
        """An error frame; the stream ends here, without [DONE]."""
        self._done = True
        return b"data: " + encode_error(err) + b"\n\n"

    def _event(self, event: Event) -> bytes:
        if isinstance(event, TextDelta):
            return self._delta({"content": event.text}) if event.text else b""
        if isinstance(event, ThinkingDelta):
            return self._thinking(event)
        if isinstance(event, ToolCallStart):
            return self._start(event.index, event.id, event.name)
        if isinstance(event, ToolCallDelta):
            return self._arguments(event.index, event.arguments)
        if isinstance(event, ToolCallEnd):
            return self._end(event)
        return self._finish(event)

    def _delta(self, delta: JSONObject, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return self._head + b'"choices":[' + _encode(choice) + b"]}" + self._tail

    def _thinking(self, event: ThinkingDelta) -> bytes:
        if not event.text and not event.signature:
            return b""
        delta: JSONObject = {"reasoning_content": event.text}
        if event.signature:
            delta["reasoning_signature"] = event.signature
        return self._delta(delta)

    def _wire_index(self, index: int) -> int:
        """Wire indices count from 0 in order of appearance, whatever the source numbered."""
        wire = self._index.get(index)
        if wire is None:
            wire = self._index[index] = len(self._index)
        return wire

    def _start(self, index: int, id: str, name: str) -> bytes:
        if index in self._index:
            return b""
        function = {"name": name, "arguments": ""}
        call = {
            "index": self._wire_index(index),
            "id": id,
            "type": "function",
            "function": function,
        }
        return self._delta({"tool_calls": [call]})

    def _arguments(self, index: int, arguments: str) -> bytes:
        if not arguments:
            return b""
        wire = self._wire_index(index)
        self._sent.add(wire)
        return self._delta({"tool_calls": [{"index": wire, "function": {"arguments": arguments}}]})

    def _end(self, event: ToolCallEnd) -> bytes:
        """Nothing, unless the arguments never went out as deltas (a whole call at once)."""
        out = self._start(event.index, event.id, event.name)
        if self._wire_index(event.index) not in self._sent and event.arguments:
            out += self._arguments(event.index, _encode(event.arguments).decode())
        return out

    def _finish(self, done: Done) -> bytes:
        self._done = True
        out = self._delta({}, _finish_word(done.finish_reason, done.raw_reason))
        if self._include_usage and done.usage is not None:
            usage = _encode(_usage_json(done.usage))
            out += self._head + b'"choices":[],"usage":' + usage + b"}" + self._tail
        return out + b"data: [DONE]\n\n"


def encode_stream(events: Iterable[Event], *, id: str, model: str) -> bytes:
    """A whole event list as one SSE body."""
    encoder = StreamEncoder(id=id, model=model)
    return b"".join(encoder.encode(e) for e in events)


# ---------------------------------------------------------------------------
# Embeddings


def decode_embed_request(body: bytes | dict[str, Any]) -> EmbedRequest:
    """An embeddings body; token-array inputs are refused (no engine here takes them)."""
    obj = _load_body(body)
    model = _str(obj, "model", "", required=True)
    if not model:
        _fail("model is required", "model")
    raw = obj.get("input")
    if isinstance(raw, str):
        inputs: tuple[str, ...] = (raw,)
    elif isinstance(raw, list) and raw and all(isinstance(s, str) for s in raw):
        inputs = tuple(raw)
    elif raw is None:
        _fail("input is required", "input")
    else:
        _fail("input must be a string or a non-empty array of strings", "input")
    return EmbedRequest(model=model, inputs=inputs, dimensions=_int(obj, "dimensions"))


def encode_embed_request(req: EmbedRequest) -> dict[str, Any]:
    body: JSONObject = {"model": req.model, "input": list(req.inputs)}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    return body


class _EmbeddingItem(msgspec.Struct):
    embedding: list[float] | str
    index: int | None = None


class _EmbedResponse(msgspec.Struct):
    data: list[_EmbeddingItem]
    model: str | None = None
    usage: _WireUsage | None = None


_EMBED_RESPONSE = msgspec.json.Decoder(_EmbedResponse)


def _vector(embedding: list[float] | str) -> tuple[float, ...]:
    """Float arrays as they are; base64 is little-endian float32, as OpenAI sends it."""
    if isinstance(embedding, str):
        raw = base64.b64decode(embedding)
        return struct.unpack(f"<{len(raw) // 4}f", raw)
    return tuple(embedding)


def decode_embed_response(body: bytes | dict[str, Any]) -> EmbedResult:
    resp: _EmbedResponse = _decode_struct(_EMBED_RESPONSE, _EmbedResponse, body)
    items = sorted(resp.data, key=lambda item: -1 if item.index is None else item.index)
    usage = resp.usage
    return EmbedResult(
        vectors=tuple(_vector(item.embedding) for item in items),
        model=resp.model or "",
        usage=Usage(input_tokens=usage.prompt_tokens or 0) if usage else None,
    )


def _embedding_json(vector: tuple[float, ...], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)


def encode_embed_response(res: EmbedResult, *, encoding_format: str = "float") -> bytes:
    """An embeddings list; `encoding_format="base64"` is what the openai SDK asks for by default."""
    data = [
        {"object": "embedding", "index": i, "embedding": _embedding_json(v, encoding_format)}
        for i, v in enumerate(res.vectors)
    ]
    body: JSONObject = {"object": "list", "data": data, "model": res.model}
    if res.usage is not None:
        tokens = res.usage.input_tokens
        body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _encode(body)

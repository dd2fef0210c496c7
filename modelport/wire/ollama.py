"""Ollama's native API codec: /api/chat, /api/embed, /api/show, errors.

Pure: canonical objects in, JSON-ready dicts out, and NDJSON lines back to events.
Ollama differs from the OpenAI wire in ways this module absorbs (see docs/wire.md):
tool calls arrive whole in one line with arguments as an object and often no id,
images are bare base64 strings, sampling settings live under `options`, usage is
`prompt_eval_count`/`eval_count`, and a failure mid-stream is a line `{"error": ...}`
under HTTP 200.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from modelport.errors import BackendError, ProtocolError, Unsupported
from modelport.types import (
    Capabilities,
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
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    collect,
)
from modelport.wire.errors import classify

__all__ = [
    "StreamDecoder",
    "capabilities_from_show",
    "context_window_from_show",
    "decode_chat_response",
    "decode_embed_response",
    "decode_error",
    "decode_stream",
    "encode_chat_request",
    "encode_embed_request",
    "finish_reason_from",
]

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

# ---------------------------------------------------------------------------
# Finish reasons


_REASONS: Mapping[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    # A request that only loads or unloads a model ends normally with no output.
    "load": FinishReason.STOP,
    "unload": FinishReason.STOP,
}


def finish_reason_from(raw: str | None, *, called_tools: bool = False) -> FinishReason:
    """Ollama says "stop" after tool calls; we say TOOL_CALLS, as clients expect."""
    reason = _REASONS.get(raw, FinishReason.STOP) if raw else FinishReason.STOP
    if called_tools and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason


# ---------------------------------------------------------------------------
# Requests


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
    # Ollama has no tool_choice; "none" is honoured by not offering the tools at all.
    if not req.tools or (req.tool_choice is not None and req.tool_choice.mode == "none"):
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


def encode_embed_request(req: EmbedRequest) -> JSONObject:
    body: JSONObject = {"model": req.model, "input": list(req.inputs)}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    return body


# ---------------------------------------------------------------------------
# Responses and the NDJSON stream


class _Function(msgspec.Struct):
    name: str = ""
    arguments: Any = None


class _WireCall(msgspec.Struct):
    function: _Function
    id: str | None = None


class _WireMessage(msgspec.Struct):
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_WireCall] | None = None


class _Line(msgspec.Struct):
    model: str | None = None
    message: _WireMessage | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: Any = None


class _Embed(msgspec.Struct):
    embeddings: list[list[float]]
    model: str = ""
    prompt_eval_count: int | None = None
    error: Any = None


_LINE = msgspec.json.Decoder(_Line)
_EMBED = msgspec.json.Decoder(_Embed)
_encode = msgspec.json.Encoder().encode


def _mint_id() -> str:
    """Ollama often gives tool calls no id; every call we emit must have one."""
    return "call_" + uuid.uuid4().hex


def _arguments(raw: Any, name: str) -> JSONObject:
    """Arguments come as an object; accept a JSON string too, in case a build sends one."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"tool call {name!r}: arguments are not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"tool call {name!r}: arguments are not a JSON object")
    return raw


def _usage(line: _Line) -> Usage | None:
    if line.prompt_eval_count is None and line.eval_count is None:
        return None
    return Usage(line.prompt_eval_count or 0, line.eval_count or 0)


def _error_message(payload: Any) -> str:
    if isinstance(payload, dict):
        return str(payload.get("message") or payload)
    return str(payload)


class StreamDecoder:
    """One NDJSON line in, canonical events out; a stream without `done: true` is an error."""

    __slots__ = ("_calls", "done", "model")

    def __init__(self) -> None:
        self._calls = 0
        self.done = False
        self.model: str | None = None

    def feed(self, line: bytes) -> list[Event]:
        line = line.strip()
        if not line or self.done:
            return []
        try:
            parsed = _LINE.decode(line)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"unreadable stream line: {exc}", raw=line) from None
        if parsed.error is not None:
            # A failure under HTTP 200: classify by its words, as a server error.
            raise classify(500, _error_message(parsed.error), raw=line)
        self.model = parsed.model or self.model
        events = self._message(parsed.message) if parsed.message is not None else []
        if parsed.done:
            self.done = True
            reason = finish_reason_from(parsed.done_reason, called_tools=self._calls > 0)
            events.append(Done(reason, _usage(parsed), parsed.done_reason))
        return events

    def close(self) -> list[Event]:
        if not self.done:
            raise ProtocolError("Ollama's stream ended without its done line")
        return []

    def _message(self, message: _WireMessage) -> list[Event]:
        events: list[Event] = []
        if message.thinking:
            events.append(ThinkingDelta(message.thinking))
        if message.content:
            events.append(TextDelta(message.content))
        for call in message.tool_calls or ():
            events.extend(self._call(call))
        return events

    def _call(self, call: _WireCall) -> list[Event]:
        """A whole call as start, one delta with all its arguments, end."""
        index, self._calls = self._calls, self._calls + 1
        name = call.function.name
        arguments = _arguments(call.function.arguments, name)
        id = call.id or _mint_id()
        return [
            ToolCallStart(index, id, name),
            ToolCallDelta(index, _encode(arguments).decode()),
            ToolCallEnd(index, id, name, arguments),
        ]


def decode_stream(lines: Iterable[bytes]) -> list[Event]:
    """A whole NDJSON stream, line by line: for tests and for callers holding the body."""
    decoder = StreamDecoder()
    events = [e for line in lines for e in decoder.feed(line)]
    return events + decoder.close()


def decode_chat_response(body: bytes) -> ChatResponse:
    """A `stream: false` answer: one object shaped like the stream's done line."""
    decoder = StreamDecoder()
    events = decoder.feed(body) + decoder.close()
    return collect(events, id="ollama-" + uuid.uuid4().hex[:24], model=decoder.model or "")


def decode_embed_response(body: bytes) -> EmbedResult:
    try:
        parsed = _EMBED.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"unreadable embeddings answer: {exc}", raw=body) from None
    usage = None if parsed.prompt_eval_count is None else Usage(parsed.prompt_eval_count, 0)
    return EmbedResult(
        vectors=tuple(tuple(v) for v in parsed.embeddings), model=parsed.model, usage=usage
    )


# ---------------------------------------------------------------------------
# Errors


def decode_error(
    status: int,
    body: bytes,
    *,
    backend_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> BackendError:
    """Ollama's `{"error": "..."}` (or any body) as our error class."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed: Any = msgspec.json.decode(body) if text else None
    except msgspec.DecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("error") is not None:
        message = _error_message(parsed["error"])
    else:
        message = text or f"HTTP {status}"
    return classify(status, message, backend_id=backend_id, headers=headers, raw=body)


# ---------------------------------------------------------------------------
# /api/show


def context_window_from_show(show: Mapping[str, Any]) -> int | None:
    """The trained context: model_info[<architecture>.context_length]."""
    info = show.get("model_info")
    if not isinstance(info, dict):
        return None
    arch = info.get("general.architecture")
    if not isinstance(arch, str):
        return None
    value = info.get(arch + ".context_length")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def capabilities_from_show(show: Mapping[str, Any]) -> Capabilities:
    """From `capabilities`; builds too old to list them get tools and structured output."""
    listed = show.get("capabilities")
    if not isinstance(listed, list):
        return Capabilities(tools=True, json_schema=True)
    return Capabilities(
        tools="tools" in listed,
        vision="vision" in listed,
        thinking="thinking" in listed,
        embeddings="embedding" in listed,
        # `format` takes a JSON schema for any generating model.
        json_schema="completion" in listed,
    )

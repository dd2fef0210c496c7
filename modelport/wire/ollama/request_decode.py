"""Decoding a client's /api/chat body into a ChatRequest, validated; the parts /api/generate
shares (options, format, think, keep_alive) live here too.

Client input, so every failure is an InvalidRequest naming the field (modelport.wire.validate
words it). What Ollama's API has and ChatRequest does not model travels in `extra` (the
options not modelled under `extra["options"]`): a passthrough to an Ollama engine sends the
client's own bytes anyway; when transcoding, `OllamaCodec.upstream_extra` gives every field,
each option by its own `options.*` row, the fate the field table says (wire/ollama/fields.py):
what only Ollama serves (`logprobs`, generate's `suffix`, `raw`, ...) is refused by name.

Shapes from ollama/ollama api/types.go (ChatRequest, Message, ToolCall, Options) and what
ollama-python 0.6.3 and ollama-js send (docs/captures/clients/ollama-*.jsonl): images are
bare base64 strings, tool-call arguments are objects, a tool result names its tool
(`tool_name`) and carries no call id (ollama-python drops ids on the way back), `stream`
absent means stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

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
    ToolResult,
)
from modelport.wire.ids import mint_tool_id
from modelport.wire.ollama.request import OPTION_KEYS
from modelport.wire.ollama.values import OPTION_VALUES, VALUES
from modelport.wire.openai.request import add_tool_result
from modelport.wire.validate import (
    JSONObject,
    an_array,
    an_object,
    at,
    check_values,
    expect,
    expected,
    fail,
    load_body,
    non_empty_text,
    optional_bool,
    optional_text,
    strings,
    text,
    tool_arguments,
    unsupported,
)

# Fields that mean nothing to an engine of another dialect and cannot be dropped without
# changing the answer: refused by name when the request is transcoded (passthrough to an
# Ollama engine carries them). Generate adds its own (suffix, raw, template, context).
# `think` levels Ollama takes beside true and false (api/types.go ThinkValue).
THINK_LEVELS = frozenset({"low", "medium", "high", "max"})
# Magic numbers of the image formats Ollama's vision models take, as base64 prefixes.
_IMAGE_TYPES = (
    ("iVBORw0KGgo", "image/png"),
    ("/9j/", "image/jpeg"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
)


# ---------------------------------------------------------------------------
# Settings shared with /api/generate


def images(value: Any, path: str) -> list[Image]:
    """`images`: bare base64 strings (ollama-python encodes files and bytes so)."""
    if value is None:
        return []
    return [Image(data=data, media_type=media_type(data)) for data in strings(value, path)]


def media_type(data: str) -> str:
    for prefix, kind in _IMAGE_TYPES:
        if data.startswith(prefix):
            return kind
    return "image/png"  # Ollama itself does not say; engines sniff the bytes


def think(value: Any) -> Reasoning | None:
    """`think`: true (the model's own depth: medium), false (off), or a level."""
    if value is None:
        return None
    if value is True:
        return Reasoning(effort="medium")
    if value is False:
        return Reasoning(effort="none")
    if isinstance(value, str):
        if value in THINK_LEVELS:
            return Reasoning(effort=value)
        unsupported("think", value)
    expected("think", 'true, false, "low", "medium", "high" or "max"', value)


def response_format(value: Any) -> dict[str, Any] | None:
    """`format`: "json", or a JSON schema, as the OpenAI-shaped response_format ChatRequest
    carries (every encoder reads that shape)."""
    if value is None or value == "":
        return None
    if value == "json":
        return {"type": "json_object"}
    if isinstance(value, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": value}}
    expected("format", '"json" or a JSON schema object', value)


def keep_alive(obj: Mapping[str, Any]) -> None:
    """`keep_alive`: accepted (seconds or a Go duration like "5m"); an Ollama engine gets it
    on passthrough, other engines keep their models loaded their own way."""
    value = obj.get("keep_alive")
    if value is not None:
        expect(value, (int, float, str), "a number of seconds or a duration string", "keep_alive")


class Options:
    """`options` split: what ChatRequest models, and the rest (for `extra`)."""

    __slots__ = ("max_tokens", "rest", "stop", "temperature", "top_p")

    def __init__(self, value: Any) -> None:
        given = {} if value is None else an_object(value, "options")
        check_values(OPTION_VALUES, given, "options")
        self.temperature = _number(given, "temperature")
        self.top_p = _number(given, "top_p")
        predict = given.get("num_predict")
        if predict is not None:
            predict = expect(predict, int, "an integer", "options.num_predict")
        # -1 is "no limit" and -2 "fill the context" to Ollama: no max_tokens either way.
        self.max_tokens: int | None = predict if predict is None or predict >= 0 else None
        self.stop = _stop(given.get("stop"))
        modelled = {"temperature", "top_p", "num_predict", "stop"}
        self.rest = {k: v for k, v in given.items() if k not in modelled}


def _number(options: Mapping[str, Any], key: str) -> float | None:
    value = options.get(key)
    if value is None:
        return None
    return float(expect(value, (int, float), "a number", at("options", key)))


def _stop(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return strings(value, "options.stop") or None


def extra_of(obj: Mapping[str, Any], known: frozenset[str], options: Options) -> JSONObject:
    """Fields ChatRequest does not model: unknown top-level keys, and `options` minus what
    was mapped (the Ollama encoder puts it back under `options`; another engine's gets each
    option as its row in wire/ollama/fields.py says)."""
    extra = {k: v for k, v in obj.items() if k not in known}
    if options.rest:
        extra["options"] = options.rest
    return extra


# ---------------------------------------------------------------------------
# Messages


def _tool_call(value: Any, path: str) -> ToolCall:
    call = an_object(value, path)
    fpath = at(path, "function")
    function = an_object(call.get("function"), fpath)
    name = non_empty_text(function, "name", at(fpath, "name"))
    arguments = tool_arguments(function.get("arguments"), at(fpath, "arguments"))
    call_id = optional_text(call, "id", at(path, "id")) or mint_tool_id("call_", hex_digits=24)
    return ToolCall(call_id, name, arguments)


def _assistant(msg: JSONObject, path: str) -> Message:
    parts: list[Part] = []
    thinking = optional_text(msg, "thinking", at(path, "thinking"))
    if thinking:
        parts.append(Thinking(thinking))
    content = optional_text(msg, "content", at(path, "content"))
    if content:
        parts.append(Text(content))
    parts.extend(images(msg.get("images"), at(path, "images")))
    calls = msg.get("tool_calls")
    if calls is not None:
        cpath = at(path, "tool_calls")
        parts.extend(_tool_call(c, at(cpath, i)) for i, c in enumerate(an_array(calls, cpath)))
    return Message("assistant", tuple(parts))


class _Pending:
    """The calls of the last assistant turn not answered yet, to pair tool results with:
    by `tool_call_id` when the client kept it, else by `tool_name`, else in order."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []

    def answer(self, msg: JSONObject, path: str) -> str:
        given = optional_text(msg, "tool_call_id", at(path, "tool_call_id"))
        name = optional_text(msg, "tool_name", at(path, "tool_name"))
        for match in (
            lambda c: c.id == given,
            lambda c: bool(name) and c.name == name,
            lambda c: True,  # a name that matches none: the next call in order
        ):
            for call in self.calls:
                if match(call):
                    self.calls.remove(call)
                    return call.id
        if given:
            return given  # a call from further back, named by its id
        fail(path, f"a tool result{f' of {name!r}' if name else ''} answers no tool call")


def _tool_result(msg: JSONObject, path: str, pending: _Pending) -> ToolResult:
    call_id = pending.answer(msg, path)
    content = optional_text(msg, "content", at(path, "content")) or ""
    parts: tuple[Text | Image, ...] = (Text(content),) if content else ()
    return ToolResult(call_id, parts + tuple(images(msg.get("images"), at(path, "images"))))


def _user(msg: JSONObject, path: str, role: Literal["user", "system"]) -> Message:
    content = optional_text(msg, "content", at(path, "content")) or ""
    parts: list[Part] = [Text(content)] if content else []
    parts.extend(images(msg.get("images"), at(path, "images")))
    if not parts:
        fail(at(path, "content"), "must not be empty")
    return Message(role, tuple(parts))


def messages_of(value: Any) -> tuple[tuple[Message, ...], str | None]:
    """The conversation, with leading system messages lifted into the system prompt (later
    ones keep their place)."""
    if value is None:
        fail("messages", "field required")
    items = an_array(value, "messages", "an array of messages")
    if not items:
        # Ollama answers an empty chat by loading the model ("done_reason": "load"); a
        # gateway has nothing to load: say so rather than send an engine nothing.
        fail("messages", "must not be empty")
    out: list[Message] = []
    system: list[str] = []
    pending = _Pending()
    for i, item in enumerate(items):
        path = at("messages", i)
        msg = an_object(item, path)
        role = text(msg, "role", at(path, "role")).lower()  # Ollama lowercases roles
        if role == "system" and not out:
            system.append(optional_text(msg, "content", at(path, "content")) or "")
        elif role in ("user", "system"):
            out.append(_user(msg, path, "system" if role == "system" else "user"))
        elif role == "assistant":
            out.append(_assistant(msg, path))
            pending.calls = [p for p in out[-1].content if isinstance(p, ToolCall)]
        elif role == "tool":
            add_tool_result(out, _tool_result(msg, path, pending))
        else:
            unsupported(at(path, "role"), role)
    return tuple(out), ("\n\n".join(system) if system else None)


def tools_of(value: Any) -> tuple[Tool, ...] | None:
    """`tools`: OpenAI's function shape; ollama-python sends `[]` when there are none."""
    if value is None:
        return None
    items = an_array(value, "tools", "an array of tools")
    return tuple(_tool(t, at("tools", i)) for i, t in enumerate(items)) or None


def _tool(value: Any, path: str) -> Tool:
    entry = an_object(value, path)
    kind = entry.get("type", "function")
    if kind != "function":
        unsupported(at(path, "type"), kind)
    fpath = at(path, "function")
    function = an_object(entry.get("function"), fpath)
    name = non_empty_text(function, "name", at(fpath, "name"))
    description = optional_text(function, "description", at(fpath, "description"))
    parameters = function.get("parameters")
    parameters = {} if parameters is None else an_object(parameters, at(fpath, "parameters"))
    return Tool(name, description, parameters)


# ---------------------------------------------------------------------------
# /api/chat

_CHAT_KEYS = frozenset({"model", "messages", "tools", "think", "format", "options", "stream"})


def decode_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A client's /api/chat body, validated; the rest of Ollama's fields ride in `extra`."""
    obj = load_body(body)
    check_values(VALUES, obj)
    model = non_empty_text(obj, "model", "model")
    messages, system = messages_of(obj.get("messages"))
    options = Options(obj.get("options"))
    keep_alive(obj)
    stream = optional_bool(obj, "stream", "stream")
    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=tools_of(obj.get("tools")),
        max_tokens=options.max_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        stop=options.stop,
        response_format=response_format(obj.get("format")),
        reasoning=think(obj.get("think")),
        stream=stream is not False,  # Ollama streams unless told not to
        extra=extra_of(obj, _CHAT_KEYS, options),
    )


__all__ = ["OPTION_KEYS", "THINK_LEVELS", "decode_request"]

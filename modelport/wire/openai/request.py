"""Decoding a client's chat-completions body into a ChatRequest, validated.

Client input, so every failure is an InvalidRequest naming the field (modelport.wire.validate
words it); unknown top-level keys travel in `extra`.
"""

from __future__ import annotations

from typing import Any

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
from modelport.wire.openai.fields import FIELDS
from modelport.wire.validate import (
    BOOLEAN,
    JSONObject,
    an_array,
    an_object,
    at,
    check_values,
    expected,
    fail,
    load_body,
    non_empty_text,
    optional_bool,
    optional_int,
    optional_number,
    optional_text,
    required,
    text,
    tool_arguments,
    unsupported,
)

# ---------------------------------------------------------------------------
# Content parts


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
    param = f"{path}.image_url.url"
    if not isinstance(url, str):
        expected(param, "a URL string", url)
    if not url:
        fail(param, "must not be empty")
    return _data_url(url) if url.startswith("data:") else Image(url=url)


def _content_part(value: Any, path: str) -> Text | Image:
    part = an_object(value, path)
    kind = part.get("type")
    if kind in ("text", "refusal"):
        return Text(text(part, kind, at(path, kind)))
    if kind == "image_url":
        return _image_part(part, path)
    unsupported(at(path, "type"), kind)


def _content(value: Any, path: str) -> tuple[Text | Image, ...]:
    """String or array of parts; null is no content."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (Text(value),)
    parts = an_array(value, path, "a string or an array of content parts")
    return tuple(_content_part(p, at(path, i)) for i, p in enumerate(parts))


def _text_only(value: Any, path: str) -> str:
    """System and developer content: text, however it is split into parts."""
    parts = _content(value, path)
    if any(isinstance(p, Image) for p in parts):
        fail(path, "may only contain text")
    return "".join(p.text for p in parts if isinstance(p, Text))


# ---------------------------------------------------------------------------
# Messages


def _tool_call(value: Any, path: str) -> ToolCall:
    call = an_object(value, path)
    call_id = text(call, "id", at(path, "id"))
    fpath = at(path, "function")
    function = an_object(call.get("function"), fpath)
    name = text(function, "name", at(fpath, "name"))
    arguments = tool_arguments(function.get("arguments"), at(fpath, "arguments"))
    return ToolCall(call_id, name, arguments)


def _assistant(msg: JSONObject, path: str) -> Message:
    parts: list[Part] = []
    thinking = optional_text(msg, "reasoning_content", at(path, "reasoning_content"))
    thinking = thinking or optional_text(msg, "reasoning", at(path, "reasoning"))
    signature = optional_text(msg, "reasoning_signature", at(path, "reasoning_signature"))
    if thinking or signature:
        parts.append(Thinking(thinking or "", signature))
    content = msg.get("content")
    if content != "":
        parts.extend(_content(content, at(path, "content")))
    calls = msg.get("tool_calls")
    if calls is not None:
        calls_path = at(path, "tool_calls")
        items = an_array(calls, calls_path)
        parts.extend(_tool_call(c, at(calls_path, i)) for i, c in enumerate(items))
    return Message("assistant", tuple(parts))


def _tool_result(msg: JSONObject, path: str) -> ToolResult:
    call_id = text(msg, "tool_call_id", at(path, "tool_call_id"))
    content = msg.get("content")
    return ToolResult(call_id, _content("" if content is None else content, at(path, "content")))


def _user(msg: JSONObject, path: str) -> Message:
    content = required(msg, "content", at(path, "content"))
    return Message("user", _content(content, at(path, "content")))


def _messages(value: Any) -> tuple[tuple[Message, ...], str | None]:
    """Messages, with system and developer messages lifted out into one system prompt."""
    if value is None:
        fail("messages", "field required")
    items = an_array(value, "messages", "an array of messages")
    if not items:
        fail("messages", "must not be empty")
    messages: list[Message] = []
    system: list[str] = []
    for i, item in enumerate(items):
        path = at("messages", i)
        msg = an_object(item, path)
        role = text(msg, "role", at(path, "role"))
        if role in ("system", "developer"):
            system.append(_text_only(msg.get("content"), at(path, "content")))
        elif role == "user":
            messages.append(_user(msg, path))
        elif role == "assistant":
            messages.append(_assistant(msg, path))
        elif role == "tool":
            add_tool_result(messages, _tool_result(msg, path))
        else:
            unsupported(at(path, "role"), role)
    return tuple(messages), ("\n\n".join(system) if system else None)


def add_tool_result(messages: list[Message], result: ToolResult) -> None:
    """Consecutive tool messages answer one assistant turn: keep them in one message."""
    if messages and messages[-1].role == "tool":
        messages[-1] = Message("tool", (*messages[-1].content, result))
    else:
        messages.append(Message("tool", (result,)))


# ---------------------------------------------------------------------------
# Tools and options


def _tool(value: Any, path: str) -> Tool:
    entry = an_object(value, path)
    kind = entry.get("type", "function")
    if kind != "function":
        unsupported(at(path, "type"), kind)
    fpath = at(path, "function")
    function = an_object(entry.get("function"), fpath)
    name = text(function, "name", at(fpath, "name"))
    description = optional_text(function, "description", at(fpath, "description"))
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {}
    return Tool(name, description, an_object(parameters, at(fpath, "parameters")))


def _tools(value: Any) -> tuple[Tool, ...] | None:
    if value is None:
        return None
    items = an_array(value, "tools", "an array of tools")
    tools = tuple(_tool(t, at("tools", i)) for i, t in enumerate(items))
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
        expected("tool_choice.function.name", "a tool name", name)
    expected("tool_choice", '"auto", "none", "required" or {"type": "function", ...}', value)


def _stop(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    expected("stop", "a string or an array of strings", value)


_STREAM_OPTIONS = {"include_usage": BOOLEAN, "include_obfuscation": BOOLEAN}

# The fields modelled here; the others travel in `extra` to meet their rows when transcoded.
_REQUEST_KEYS = FIELDS.modelled


def decode_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A client's chat-completions body, validated; unknown keys travel in `extra`."""
    obj = load_body(body)
    check_values(FIELDS.values, obj)
    if obj.get("stream_options"):  # an object, checked above: its members too
        check_values(_STREAM_OPTIONS, obj["stream_options"], "stream_options")
    model = non_empty_text(obj, "model", "model")
    messages, system = _messages(obj.get("messages"))
    effort = optional_text(obj, "reasoning_effort", "reasoning_effort")
    max_tokens = optional_int(obj, "max_completion_tokens", "max_completion_tokens")
    response_format = obj.get("response_format")
    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=_tools(obj.get("tools")),
        tool_choice=_tool_choice(obj.get("tool_choice")),
        parallel_tool_calls=optional_bool(obj, "parallel_tool_calls", "parallel_tool_calls"),
        max_tokens=max_tokens
        if max_tokens is not None
        else optional_int(obj, "max_tokens", "max_tokens"),
        temperature=optional_number(obj, "temperature", "temperature"),
        top_p=optional_number(obj, "top_p", "top_p"),
        stop=_stop(obj.get("stop")),
        response_format=None
        if response_format is None
        else an_object(response_format, "response_format"),
        reasoning=Reasoning(effort=effort) if effort else None,
        stream=bool(optional_bool(obj, "stream", "stream")),
        extra={k: v for k, v in obj.items() if k not in _REQUEST_KEYS},
    )

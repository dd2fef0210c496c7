"""Decoding a client's /v1/messages body into a ChatRequest, validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from modelport.errors import (
    Unsupported,
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
    EMPTY_SCHEMA,
    REDACTED_PREFIX,
)
from modelport.wire.anthropic.fields import FIELDS
from modelport.wire.validate import (
    INT32_MAX,
    check_values,
    expect,
    expected,
    fail,
    integer,
    load_body,
    optional,
    optional_number,
    required,
    strings,
    text,
    unsupported,
)

# Anthropic's least thinking budget (its API reference), and no more than an engine holds.
_BUDGET = integer(1024, INT32_MAX)

# The fields modelled here; the others travel in `extra` to meet their rows when transcoded.
_REQUEST_KEYS = FIELDS.modelled
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


def decode_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A /v1/messages body as a ChatRequest; malformed input raises InvalidRequest."""
    return decode_request_object(load_body(body), count_tokens=False)


def decode_request_object(obj: dict[str, Any], *, count_tokens: bool) -> ChatRequest:
    check_values(FIELDS.values, obj)
    model = text(obj, "model", "model")
    max_tokens = _decode_max_tokens(obj, needed=not count_tokens)
    messages = _decode_messages(required(obj, "messages", "messages"))
    extra = {k: v for k, v in obj.items() if k not in _REQUEST_KEYS}
    reasoning, response_format = decode_reasoning(obj, extra)
    tool_choice, parallel = _decode_tool_choice(obj.get("tool_choice"))
    stop = optional(obj, "stop_sequences", list, "an array of strings", "stop_sequences")
    stream = optional(obj, "stream", bool, "a boolean", "stream")
    return ChatRequest(
        model=model,
        messages=messages,
        system=_decode_system(obj.get("system")),
        tools=_decode_tools(obj.get("tools")),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=max_tokens,
        temperature=optional_number(obj, "temperature", "temperature"),
        top_p=optional_number(obj, "top_p", "top_p"),
        stop=None if stop is None else strings(stop, "stop_sequences"),
        response_format=response_format,
        reasoning=reasoning,
        stream=bool(stream),
        extra=extra,
    )


def _decode_max_tokens(obj: Mapping[str, Any], *, needed: bool) -> int | None:
    if not needed and obj.get("max_tokens") is None:
        return None
    value: int = expect(required(obj, "max_tokens", "max_tokens"), int, "an integer", "max_tokens")
    if value < 1:
        fail("max_tokens", "must be at least 1")
    return value


def _decode_system(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    blocks = expect(value, list, "a string or an array of text blocks", "system")
    texts = []
    for i, block in enumerate(blocks):
        param = f"system[{i}]"
        expect(block, dict, "an object", param)
        if block.get("type") != "text":
            expected(f"{param}.type", "a text block", block.get("type"))
        texts.append(text(block, "text", f"{param}.text"))
    return "\n\n".join(texts)


def _decode_messages(value: Any) -> tuple[Message, ...]:
    items = expect(value, list, "an array of messages", "messages")
    if not items:
        fail("messages", "must not be empty")
    out: list[Message] = []
    for i, item in enumerate(items):
        out.extend(_decode_message(item, f"messages[{i}]", opens=i == 0))
    return tuple(out)


def _decode_message(item: Any, param: str, *, opens: bool) -> list[Message]:
    expect(item, dict, "an object", param)
    role = text(item, "role", f"{param}.role")
    if role == "system":
        return [_decode_system_message(item, param, opens=opens)]
    if role not in ("user", "assistant"):
        unsupported(f"{param}.role", role)
    parts = _decode_content(required(item, "content", f"{param}.content"), f"{param}.content")
    if role == "assistant":
        return [Message("assistant", parts)]
    return _split_tool_results(parts)


def _decode_system_message(item: Mapping[str, Any], param: str, *, opens: bool) -> Message:
    """A mid-conversation system message (Claude Code sends one after its first user turn),
    kept at its place. Instructions that open the conversation belong in `system`."""
    if opens:
        fail(f"{param}.role", "a system message cannot open the conversation; use `system`")
    parts = _decode_content(required(item, "content", f"{param}.content"), f"{param}.content")
    for i, part in enumerate(parts):
        if not isinstance(part, Text):
            fail(f"{param}.content[{i}]", "system messages hold only text blocks")
    return Message("system", parts)


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
    blocks = expect(value, list, "a string or an array of content blocks", param)
    return tuple(decode_block(b, f"{param}[{i}]") for i, b in enumerate(blocks))


def decode_block(block: Any, param: str) -> Part:
    expect(block, dict, "an object", param)
    kind = text(block, "type", f"{param}.type")
    if kind == "text":
        return Text(text(block, "text", f"{param}.text"))
    if kind == "image":
        return _decode_image(block, param)
    if kind == "tool_use":
        return _decode_tool_use(block, param)
    if kind == "tool_result":
        return _decode_tool_result(block, param)
    if kind == "thinking":
        signature = optional(block, "signature", str, "a string", f"{param}.signature")
        return Thinking(text(block, "thinking", f"{param}.thinking"), signature)
    if kind == "redacted_thinking":
        return Thinking("", REDACTED_PREFIX + text(block, "data", f"{param}.data"))
    if kind in _UNSUPPORTED_BLOCKS:
        raise Unsupported(f"{param}: content blocks of type {kind!r} are not supported")
    unsupported(f"{param}.type", kind)


def _decode_image(block: Mapping[str, Any], param: str) -> Image:
    source = expect(
        required(block, "source", f"{param}.source"), dict, "an object", f"{param}.source"
    )
    kind = text(source, "type", f"{param}.source.type")
    if kind == "base64":
        data = text(source, "data", f"{param}.source.data")
        return Image(data=data, media_type=text(source, "media_type", f"{param}.source.media_type"))
    if kind == "url":
        return Image(url=text(source, "url", f"{param}.source.url"))
    raise Unsupported(f"{param}.source: image sources of type {kind!r} are not supported")


def _decode_tool_use(block: Mapping[str, Any], param: str) -> ToolCall:
    arguments = expect(
        required(block, "input", f"{param}.input"), dict, "an object", f"{param}.input"
    )
    return ToolCall(
        text(block, "id", f"{param}.id"), text(block, "name", f"{param}.name"), arguments
    )


def _decode_tool_result(block: Mapping[str, Any], param: str) -> ToolResult:
    call_id = text(block, "tool_use_id", f"{param}.tool_use_id")
    is_error = bool(optional(block, "is_error", bool, "a boolean", f"{param}.is_error"))
    content = block.get("content")
    if content is None:
        return ToolResult(call_id, (), is_error)
    parts = _decode_content(content, f"{param}.content")
    kept: list[Text | Image] = []
    for i, part in enumerate(parts):
        if not isinstance(part, Text | Image):
            fail(f"{param}.content[{i}]", "tool results hold only text and image blocks")
        kept.append(part)
    return ToolResult(call_id, tuple(kept), is_error)


def _decode_tools(value: Any) -> tuple[Tool, ...] | None:
    if value is None:
        return None
    items = expect(value, list, "an array of tools", "tools")
    return tuple(_decode_tool(t, f"tools[{i}]") for i, t in enumerate(items))


def _decode_tool(item: Any, param: str) -> Tool:
    expect(item, dict, "an object", param)
    kind = item.get("type")
    if kind not in (None, "custom"):
        raise Unsupported(f"{param}: server tools of type {kind!r} are not supported")
    schema = expect(
        required(item, "input_schema", f"{param}.input_schema"),
        dict,
        "an object",
        f"{param}.input_schema",
    )
    return Tool(
        name=text(item, "name", f"{param}.name"),
        description=optional(item, "description", str, "a string", f"{param}.description"),
        parameters={} if schema == EMPTY_SCHEMA else schema,
    )


def _decode_tool_choice(value: Any) -> tuple[ToolChoice | None, bool | None]:
    if value is None:
        return None, None
    expect(value, dict, "an object", "tool_choice")
    kind = text(value, "type", "tool_choice.type")
    disable = optional(
        value,
        "disable_parallel_tool_use",
        bool,
        "a boolean",
        "tool_choice.disable_parallel_tool_use",
    )
    parallel = None if disable is None else not disable
    if kind == "auto":
        return ToolChoice("auto"), parallel
    if kind == "any":
        return ToolChoice("required"), parallel
    if kind == "none":
        return ToolChoice("none"), parallel
    if kind == "tool":
        return ToolChoice("named", text(value, "name", "tool_choice.name")), parallel
    unsupported("tool_choice.type", kind)


def decode_reasoning(
    obj: Mapping[str, Any], extra: dict[str, Any]
) -> tuple[Reasoning | None, dict[str, Any] | None]:
    """`thinking` and `output_config` as the canonical Reasoning and response_format.

    `output_config.effort` is a thinking control only when thinking is on (enabled or
    adaptive); otherwise it stays in `extra` (Anthropic also spends it on plain text).
    `adaptive` without an effort is the engine's default and stays in `extra` as well.
    """
    thinking = _decode_thinking(obj.get("thinking"), extra)
    takes_effort = thinking is not None and thinking.effort != "none"
    response_format, effort = _decode_output_config(
        obj.get("output_config"), extra, takes_effort=takes_effort
    )
    if thinking is not None and effort is not None:
        thinking = msgspec.structs.replace(thinking, effort=effort)
    if thinking is not None and thinking.adaptive and thinking.effort is None:
        extra["thinking"] = obj["thinking"]
        return None, response_format
    return thinking, response_format


def _decode_thinking(value: Any, extra: dict[str, Any]) -> Reasoning | None:
    """enabled: a budget; adaptive: the model decides; disabled: effort "none". Kinds we do
    not know stay in extra, for an engine that might."""
    if value is None:
        return None
    expect(value, dict, "an object", "thinking")
    kind = text(value, "type", "thinking.type")
    display = optional(value, "display", str, "a string", "thinking.display")
    if kind == "enabled":
        param = "thinking.budget_tokens"
        budget: int = _BUDGET(required(value, "budget_tokens", param), param)
        return Reasoning(budget_tokens=budget, display=display)
    if kind == "adaptive":
        return Reasoning(adaptive=True, display=display)
    if kind == "disabled":
        return Reasoning(effort="none")
    extra["thinking"] = value
    return None


def _decode_output_config(
    value: Any, extra: dict[str, Any], *, takes_effort: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """A json_schema `format` becomes an OpenAI-shaped response_format, `effort` a thinking
    effort (when `takes_effort`); the rest stays in extra."""
    if value is None:
        return None, None
    rest = dict(expect(value, dict, "an object", "output_config"))
    response_format = None
    fmt = rest.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = expect(
            required(fmt, "schema", "output_config.format.schema"),
            dict,
            "an object",
            "output_config.format.schema",
        )
        del rest["format"]
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema},
        }
    effort = optional(rest, "effort", str, "a string", "output_config.effort")
    if takes_effort and effort is not None:
        del rest["effort"]
    else:
        effort = None
    if rest:
        extra["output_config"] = rest
    return response_format, effort

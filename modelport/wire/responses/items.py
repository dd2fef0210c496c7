"""Responses `input` items as canonical messages.

A string is one user message. An array holds items: messages (roles user, assistant,
system, developer; parts input_text, input_image, output_text, refusal), `function_call`
and `function_call_output`, their `custom_tool_call` twins, `additional_tools` (tools Codex
sends as an item), and `reasoning`. Consecutive assistant-side items (reasoning,
an assistant message, function calls) make one assistant turn, consecutive outputs one
tool message, as the other dialects fold them. System and developer messages are lifted
into the system prompt, after `instructions`.

Reasoning items are validated and dropped: their text is the model's past thinking, which
an engine of another dialect neither needs nor could verify (`encrypted_content` is
OpenAI's). Passthrough engines get them untouched. Items that record hosted tools
(web_search_call, mcp_call, ...) are dropped the same way: the engine never saw those
tools. An item that needs stored state (item_reference) is refused by name.
"""

from __future__ import annotations

from typing import Any

from modelport.types import Image, Message, Part, Text, Tool, ToolCall, ToolResult
from modelport.wire.responses.tools import CUSTOM_ARGUMENT, decode_tools, flat_name
from modelport.wire.validate import (
    JSONObject,
    an_array,
    an_object,
    at,
    expect,
    expected,
    fail,
    optional_text,
    required,
    text,
    tool_arguments,
    unsupported,
)

# Items that record what a hosted tool did: history the engine never took part in.
HOSTED_ITEMS = frozenset(
    {
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "web_search_call",
        "tool_search_call",
        "tool_search_output",
        "configuration_update",
        "compaction",
        "compaction_trigger",
        "image_generation_call",
        "code_interpreter_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "program",
        "program_output",
    }
)
_ROLES = frozenset({"user", "assistant", "system", "developer"})


def _image(part: JSONObject, path: str) -> Image:
    url = part.get("image_url")
    if url is None:
        if part.get("file_id") is not None:
            fail(at(path, "file_id"), "is not supported: send the image as image_url")
        fail(at(path, "image_url"), "field required")
    url = expect(url, str, "a URL string", at(path, "image_url"))
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        if sep and head.endswith(";base64"):
            return Image(data=data, media_type=head[: -len(";base64")] or None)
    return Image(url=url)


def _part(value: Any, path: str) -> Text | Image:
    part = an_object(value, path)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return Text(text(part, "text", at(path, "text")))
    if kind == "refusal":
        return Text(text(part, "refusal", at(path, "refusal")))
    if kind == "input_image":
        return _image(part, path)
    unsupported(at(path, "type"), kind)


def content_parts(value: Any, path: str) -> tuple[Text | Image, ...]:
    if isinstance(value, str):
        return (Text(value),) if value else ()
    parts = an_array(value, path, "a string or an array of content parts")
    return tuple(_part(p, at(path, i)) for i, p in enumerate(parts))


def _function_call(item: JSONObject, path: str) -> ToolCall:
    call_id = text(item, "call_id", at(path, "call_id"))
    name = text(item, "name", at(path, "name"))
    namespace = optional_text(item, "namespace", at(path, "namespace"))
    arguments = tool_arguments(item.get("arguments"), at(path, "arguments"))
    return ToolCall(call_id, flat_name(namespace, name) if namespace else name, arguments)


def _custom_call(item: JSONObject, path: str) -> ToolCall:
    """A custom (free-form) tool's call: its `input` string is the one argument engines saw."""
    call_id = text(item, "call_id", at(path, "call_id"))
    name = text(item, "name", at(path, "name"))
    namespace = optional_text(item, "namespace", at(path, "namespace"))
    value = text(item, "input", at(path, "input"))
    return ToolCall(
        call_id, flat_name(namespace, name) if namespace else name, {CUSTOM_ARGUMENT: value}
    )


def _function_output(item: JSONObject, path: str) -> ToolResult:
    call_id = text(item, "call_id", at(path, "call_id"))
    output = required(item, "output", at(path, "output"))
    return ToolResult(call_id, content_parts(output, at(path, "output")))


def _reasoning(item: JSONObject, path: str) -> None:
    """Validated, then dropped (see the module's docstring)."""
    summary = item.get("summary")
    if summary is not None:
        an_array(summary, at(path, "summary"))
    optional_text(item, "encrypted_content", at(path, "encrypted_content"))


class _Turns:
    """Folds items into messages: one assistant turn, one tool message, at a time."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.system: list[str] = []
        self.tools: list[Tool] = []  # from `additional_tools` items

    def add(self, role: str, parts: tuple[Part, ...]) -> None:
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == role and role in ("assistant", "tool"):
            self.messages[-1] = Message(last.role, (*last.content, *parts))
        else:
            self.messages.append(Message(role, parts))  # type: ignore[arg-type]

    def message(self, item: JSONObject, path: str) -> None:
        role = text(item, "role", at(path, "role"))
        if role not in _ROLES:
            unsupported(at(path, "role"), role)
        parts = content_parts(required(item, "content", at(path, "content")), at(path, "content"))
        if role in ("system", "developer"):
            if any(isinstance(p, Image) for p in parts):
                fail(at(path, "content"), "may only contain text")
            self.system.append("".join(p.text for p in parts if isinstance(p, Text)))
        elif role == "assistant":
            self.add("assistant", parts)
        else:
            self.messages.append(Message("user", parts))


def _item(turns: _Turns, value: Any, path: str) -> None:
    item = an_object(value, path)
    kind = item.get("type", "message")
    if kind == "message":
        turns.message(item, path)
    elif kind == "function_call":
        turns.add("assistant", (_function_call(item, path),))
    elif kind == "custom_tool_call":
        turns.add("assistant", (_custom_call(item, path),))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        turns.add("tool", (_function_output(item, path),))
    elif kind == "additional_tools":
        turns.tools.extend(decode_tools(item.get("tools"), at(path, "tools")))
    elif kind == "reasoning":
        _reasoning(item, path)
    elif kind == "item_reference":
        fail(path, "is not supported: items are not stored here; send the item itself")
    elif kind not in HOSTED_ITEMS:
        if not isinstance(kind, str):
            expected(at(path, "type"), "an item type string", kind)
        unsupported(at(path, "type"), kind)


def decode_input(value: Any) -> tuple[list[Message], list[str], list[Tool]]:
    """`input` as messages, the system and developer texts found among them, and the tools
    its `additional_tools` items offer."""
    if isinstance(value, str):
        return [Message.user(value)], [], []
    items = an_array(value, "input", "a string or an array of input items")
    turns = _Turns()
    for i, item in enumerate(items):
        _item(turns, item, at("input", i))
    if not turns.messages:
        fail("input", "must hold at least one message")
    return turns.messages, turns.system, turns.tools

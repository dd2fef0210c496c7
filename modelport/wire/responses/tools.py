"""Responses tools: function and custom tools kept, namespace groups unwrapped, hosted
tools dropped.

An engine behind the gateway can run only the tools the client itself executes. Hosted
tools (web_search, file_search, code_interpreter, computer use, image_generation, mcp,
local_shell, ...) run on OpenAI's side, so they are left out of what the engine sees and
never make a request fail. A `namespace` tool (Codex CLI groups MCP tools this way) is a
group of tools: each becomes one canonical tool whose name joins the namespace and the
tool's name, and a call to it goes back to the client as `{namespace, name}`. A `custom`
(free-form) tool takes one string: engines see a function with one string parameter,
`input`, and a call to it goes back as a `custom_tool_call` with that string. Codex sends
tools in `tools` and, for models it knows, in `additional_tools` input items: both count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from modelport.types import Tool, ToolChoice
from modelport.wire.validate import (
    an_array,
    an_object,
    at,
    expected,
    optional_text,
    text,
)

CUSTOM_ARGUMENT = "input"


class ToolRef(NamedTuple):
    """How a canonical tool name goes back to the client: its namespace, its own name, and
    whether it is a custom (free-form) tool."""

    namespace: str | None
    name: str
    custom: bool


def flat_name(namespace: str, name: str) -> str:
    """The name an engine sees for `name` in `namespace`: `crm__lookup` (a namespace that
    already ends with a separator, like Codex's `mcp__server__`, is joined as it is)."""
    if namespace.endswith(("_", "-", ".")):
        return namespace + name
    return f"{namespace}__{name}"


def _custom_parameters(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One string parameter; a grammar the tool declares is said in its description."""
    about = "The tool's free-form input."
    fmt = entry.get("format")
    if isinstance(fmt, dict) and isinstance(fmt.get("definition"), str):
        about += f" It must follow this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
    prop = {"type": "string", "description": about}
    return {"type": "object", "properties": {CUSTOM_ARGUMENT: prop}, "required": [CUSTOM_ARGUMENT]}


def _tool(entry: Mapping[str, Any], path: str, namespace: str | None) -> Tool:
    name = text(entry, "name", at(path, "name"))
    description = optional_text(entry, "description", at(path, "description"))
    flat = flat_name(namespace, name) if namespace is not None else name
    if entry.get("type") == "custom":
        return Tool(flat, description, _custom_parameters(entry))
    parameters = entry.get("parameters")
    parameters = {} if parameters is None else an_object(parameters, at(path, "parameters"))
    return Tool(flat, description, parameters)


def _namespace(entry: Mapping[str, Any], path: str) -> list[Tool]:
    namespace = text(entry, "name", at(path, "name"))
    members = an_array(entry.get("tools"), at(path, "tools"), "an array of tools")
    tools: list[Tool] = []
    for i, member in enumerate(members):
        mpath = at(at(path, "tools"), i)
        item = an_object(member, mpath)
        if item.get("type", "function") in ("function", "custom"):
            tools.append(_tool(item, mpath, namespace))
    return tools


def decode_tools(value: Any, path: str = "tools") -> list[Tool]:
    """Function and custom tools and unwrapped namespaces; every other (hosted) tool type is
    dropped."""
    if value is None:
        return []
    items = an_array(value, path, "an array of tools")
    tools: list[Tool] = []
    for i, item in enumerate(items):
        ipath = at(path, i)
        entry = an_object(item, ipath)
        kind = entry.get("type")
        if kind in ("function", "custom"):
            tools.append(_tool(entry, ipath, None))
        elif kind == "namespace":
            tools.extend(_namespace(entry, ipath))
        elif not isinstance(kind, str):
            expected(at(ipath, "type"), "a tool type string", kind)
    return tools


def _refs_of(entries: Any, namespace: str | None, refs: dict[str, ToolRef]) -> None:
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        kind, name = entry.get("type"), entry["name"]
        if kind == "namespace" and namespace is None:
            _refs_of(entry.get("tools"), name, refs)
        elif kind in ("function", "custom") and (namespace is not None or kind == "custom"):
            flat = flat_name(namespace, name) if namespace is not None else name
            refs[flat] = ToolRef(namespace, name, kind == "custom")


def tool_refs(raw_tools: Any, raw_input: Any) -> dict[str, ToolRef]:
    """Canonical name -> how it goes back, for the tools that do not go back as they are
    (namespaced or custom), from the request as the client sent it (already validated)."""
    refs: dict[str, ToolRef] = {}
    _refs_of(raw_tools, None, refs)
    for item in _additional_tools(raw_input):
        _refs_of(item.get("tools"), None, refs)
    return refs


def _additional_tools(raw_input: Any) -> Iterable[dict[str, Any]]:
    if isinstance(raw_input, list):
        for item in raw_input:
            if isinstance(item, dict) and item.get("type") == "additional_tools":
                yield item


def decode_tool_choice(value: Any) -> ToolChoice | None:
    """auto / none / required; a named function; `allowed_tools` keeps its mode. A hosted
    tool's choice (web_search, mcp, ...) is `auto`: that tool is not there to force."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in ("auto", "none", "required"):
            return ToolChoice(value)  # type: ignore[arg-type]
        expected("tool_choice", '"auto", "none", "required" or an object', value)
    choice = an_object(value, "tool_choice")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = text(choice, "name", "tool_choice.name")
        namespace = optional_text(choice, "namespace", "tool_choice.namespace")
        return ToolChoice("named", flat_name(namespace, name) if namespace else name)
    if kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        return ToolChoice("required" if mode == "required" else "auto")
    if not isinstance(kind, str):
        expected("tool_choice.type", "a string", kind)
    return ToolChoice("auto")


def tool_choice_json(choice: ToolChoice, refs: Mapping[str, ToolRef]) -> Any:
    if choice.mode != "named":
        return choice.mode
    name = choice.name or ""
    ref = refs.get(name)
    if ref is None:
        return {"type": "function", "name": name}
    out: dict[str, Any] = {"type": "custom" if ref.custom else "function", "name": ref.name}
    if ref.namespace is not None:
        out["namespace"] = ref.namespace
    return out


def tool_json(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["parameters"] = tool.parameters
    out["strict"] = False
    return out

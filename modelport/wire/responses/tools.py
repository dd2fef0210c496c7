"""Responses tools: function tools kept, namespace groups unwrapped, hosted tools dropped.

An engine behind the gateway can run only the functions the client itself executes. Hosted
tools (web_search, file_search, code_interpreter, computer use, image_generation, mcp,
local_shell, ...) run on OpenAI's side, so they are left out of what the engine sees and
never make a request fail. A `namespace` tool (Codex CLI groups MCP tools this way) is a
group of functions: each becomes one canonical tool whose name joins the namespace and the
function's name, and a call to it goes back to the client as `{namespace, name}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelport.types import Tool, ToolChoice
from modelport.wire.validate import (
    an_array,
    an_object,
    at,
    expected,
    optional_text,
    text,
)


def flat_name(namespace: str, name: str) -> str:
    """The name an engine sees for `name` in `namespace`: `crm__lookup` (a namespace that
    already ends with a separator, like Codex's `mcp__server__`, is joined as it is)."""
    if namespace.endswith(("_", "-", ".")):
        return namespace + name
    return f"{namespace}__{name}"


def _function(entry: Mapping[str, Any], path: str, namespace: str | None) -> Tool:
    name = text(entry, "name", at(path, "name"))
    description = optional_text(entry, "description", at(path, "description"))
    parameters = entry.get("parameters")
    parameters = {} if parameters is None else an_object(parameters, at(path, "parameters"))
    flat = flat_name(namespace, name) if namespace is not None else name
    return Tool(flat, description, parameters)


def _namespace(entry: Mapping[str, Any], path: str) -> list[Tool]:
    namespace = text(entry, "name", at(path, "name"))
    members = an_array(entry.get("tools"), at(path, "tools"), "an array of tools")
    tools: list[Tool] = []
    for i, member in enumerate(members):
        mpath = at(at(path, "tools"), i)
        item = an_object(member, mpath)
        if item.get("type", "function") == "function":
            tools.append(_function(item, mpath, namespace))
    return tools


def decode_tools(value: Any) -> tuple[Tool, ...] | None:
    """Function tools and unwrapped namespaces; every other (hosted) tool type is dropped."""
    if value is None:
        return None
    items = an_array(value, "tools", "an array of tools")
    tools: list[Tool] = []
    for i, item in enumerate(items):
        path = at("tools", i)
        entry = an_object(item, path)
        kind = entry.get("type")
        if kind == "function":
            tools.append(_function(entry, path, None))
        elif kind == "namespace":
            tools.extend(_namespace(entry, path))
        elif not isinstance(kind, str):
            expected(at(path, "type"), "a tool type string", kind)
    return tuple(tools) or None


def namespaced_names(raw_tools: Any) -> dict[str, tuple[str, str]]:
    """flat name -> (namespace, name) for the request's namespace tools, to map calls back.
    Reads the tools as the client sent them (already validated by decode_tools)."""
    names: dict[str, tuple[str, str]] = {}
    if not isinstance(raw_tools, list):
        return names
    for entry in raw_tools:
        if not isinstance(entry, dict) or entry.get("type") != "namespace":
            continue
        namespace = entry.get("name")
        for member in entry.get("tools") or ():
            name = member.get("name") if isinstance(member, dict) else None
            if isinstance(namespace, str) and isinstance(name, str):
                names[flat_name(namespace, name)] = (namespace, name)
    return names


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
    if kind == "function":
        name = text(choice, "name", "tool_choice.name")
        namespace = optional_text(choice, "namespace", "tool_choice.namespace")
        return ToolChoice("named", flat_name(namespace, name) if namespace else name)
    if kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        return ToolChoice("required" if mode == "required" else "auto")
    if not isinstance(kind, str):
        expected("tool_choice.type", "a string", kind)
    return ToolChoice("auto")


def tool_choice_json(choice: ToolChoice, names: Mapping[str, tuple[str, str]]) -> Any:
    if choice.mode != "named":
        return choice.mode
    name = choice.name or ""
    if name in names:
        namespace, member = names[name]
        return {"type": "function", "name": member, "namespace": namespace}
    return {"type": "function", "name": name}


def tool_json(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["parameters"] = tool.parameters
    out["strict"] = False
    return out

"""Replies chosen from the request itself, for clients that drive several turns on their own.

A coding agent run one-shot sends a request, runs the tool the engine asked for, and sends
the whole history again with the tool's result. `tool_round_trip` scripts that conversation
on any chat wire the fakes speak (OpenAI Chat Completions, Anthropic Messages, Ollama chat,
and OpenAI Responses), whatever order the agent's requests come in:

    fake.reply_for = tool_round_trip("Read", {"file_path": path}, text="done")

Requests that do not offer the tool (opencode's title request) get the text. Like the rest of
the fakes this reads plain JSON and never imports modelport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .core import Recorded, Reply

_OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")


def offered_tools(body: Any) -> list[str]:
    """Names of the tools a request offers: Chat/Ollama, Messages, and Responses (namespaces
    unwrapped) shapes alike."""
    if not isinstance(body, dict) or not isinstance(body.get("tools"), list):
        return []
    names: list[str] = []
    for tool in body["tools"]:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
        elif tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
            names += [t["name"] for t in tool["tools"] if isinstance(t, dict) and "name" in t]
        elif isinstance(tool.get("name"), str):
            names.append(tool["name"])
    return names


def _texts(value: Any) -> Iterator[str]:
    """Every string under `value`: a tool result is a string or a list of text parts."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key in ("text", "content", "output"):
            if key in value:
                yield from _texts(value[key])


def tool_results(body: Any) -> list[str]:
    """The text of every tool result in a request's history, on any of the four wires."""
    if not isinstance(body, dict):
        return []
    found: list[str] = []
    items = body.get("messages") if "messages" in body else body.get("input")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("role") == "tool":  # Chat Completions, Ollama
            found.append("".join(_texts(item.get("content"))))
        elif item.get("type") in _OUTPUT_TYPES:  # Responses
            found.append("".join(_texts(item.get("output"))))
        elif isinstance(item.get("content"), list):  # Messages: tool_result blocks
            for block in item["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    found.append("".join(_texts(block.get("content"))))
    return found


def tool_round_trip(
    tool: str, arguments: dict[str, Any], *, text: str, thinking: str = ""
) -> Callable[[Recorded], Reply]:
    """Ask for `tool` once (when it is offered and no tool result is in the history yet),
    then answer `text`. One-shot agents start each run with an empty history, so "a result
    anywhere" means "the call was answered", even when the client adds a user message after
    the result."""

    def choose(request: Recorded) -> Reply:
        body = request.json
        if tool in offered_tools(body) and not tool_results(body):
            return Reply(text="", thinking=thinking, tool_calls=[(None, tool, arguments)])
        return Reply(text=text)

    return choose

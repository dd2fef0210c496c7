"""Encoding a ChatRequest as a chat-completions body for an engine."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelport.types import (
    ChatRequest,
    Image,
    Message,
    Reasoning,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from modelport.wire.openai.structs import (
    encode_json,
)

JSONObject = dict[str, Any]


def _image_json(image: Image) -> JSONObject:
    if image.data is not None:
        url = f"data:{image.media_type or ''};base64,{image.data}"
    else:
        url = image.url or ""
    return {"type": "image_url", "image_url": {"url": url}}


def parts_json(parts: Iterable[Text | Image]) -> str | list[JSONObject]:
    """A single text is a plain string, as every engine accepts; anything else an array."""
    items = list(parts)
    if len(items) == 1 and isinstance(items[0], Text):
        return items[0].text
    return [
        {"type": "text", "text": p.text} if isinstance(p, Text) else _image_json(p) for p in items
    ]


def call_json(call: ToolCall) -> JSONObject:
    arguments = encode_json(call.arguments).decode()
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _assistant_json(msg: Message, *, reasoning_history: bool) -> JSONObject:
    content = [p for p in msg.content if isinstance(p, Text | Image)]
    calls = msg.tool_calls
    out: JSONObject = {"role": "assistant"}
    if content:
        out["content"] = parts_json(content)
    else:
        out["content"] = None if calls else ""
    if reasoning_history:
        add_reasoning(out, msg)
    if calls:
        out["tool_calls"] = [call_json(c) for c in calls]
    return out


def add_reasoning(out: JSONObject, msg: Message) -> None:
    """Thinking parts as `reasoning_content`, with our `reasoning_signature` beside it."""
    thinking = [p for p in msg.content if isinstance(p, Thinking)]
    if thinking:
        out["reasoning_content"] = "".join(p.text for p in thinking)
        signature = next((p.signature for p in reversed(thinking) if p.signature), None)
        if signature:
            out["reasoning_signature"] = signature


def _results_json(msg: Message) -> list[JSONObject]:
    """Each ToolResult is its own tool message; other parts follow as a user message."""
    out: list[JSONObject] = [
        {"role": "tool", "tool_call_id": r.tool_call_id, "content": parts_json(r.content)}
        for r in msg.content
        if isinstance(r, ToolResult)
    ]
    rest = [p for p in msg.content if isinstance(p, Text | Image)]
    if rest:
        out.append({"role": "user", "content": parts_json(rest)})
    return out


def _message_json(msg: Message, *, reasoning_history: bool) -> list[JSONObject]:
    if msg.role == "assistant":
        return [_assistant_json(msg, reasoning_history=reasoning_history)]
    if msg.role in ("tool", "user"):
        return _results_json(msg) if msg.role == "tool" or _has_results(msg) else [_user_json(msg)]
    return [
        {
            "role": "system",
            "content": "\n\n".join(p.text for p in msg.content if isinstance(p, Text)),
        }
    ]


def _has_results(msg: Message) -> bool:
    return any(isinstance(p, ToolResult) for p in msg.content)


def _user_json(msg: Message) -> JSONObject:
    parts = [p for p in msg.content if isinstance(p, Text | Image)]
    return {"role": "user", "content": parts_json(parts) if parts else ""}


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


# Effort words of other dialects that OpenAI lacks, as its nearest one (Anthropic's "max").
_OPENAI_EFFORT = {"max": "high"}
# The levels chat templates know (gpt-oss reads `reasoning_effort` from chat_template_kwargs).
_TEMPLATE_LEVELS = frozenset({"low", "medium", "high"})


def _effort(reasoning: Reasoning) -> str | None:
    """OpenAI speaks effort; a thinking budget from Anthropic is turned into the nearest one.
    Adaptive thinking without an effort is the engine's default: no field."""
    if reasoning.effort:
        return _OPENAI_EFFORT.get(reasoning.effort, reasoning.effort)
    if reasoning.budget_tokens is None:
        return None
    if reasoning.budget_tokens < 4096:
        return "low"
    return "medium" if reasoning.budget_tokens < 16384 else "high"


def _template_kwargs(reasoning: Reasoning, given: Any) -> JSONObject:
    """Thinking as chat-template variables: `enable_thinking` (Qwen3, GLM, ...) and
    `reasoning_effort` (gpt-oss); what the client put in chat_template_kwargs wins."""
    effort = _effort(reasoning)
    kwargs: JSONObject = {"enable_thinking": effort != "none"}
    if effort in _TEMPLATE_LEVELS:
        kwargs["reasoning_effort"] = effort
    return {**kwargs, **given} if isinstance(given, dict) else kwargs


def _reasoning_json(req: ChatRequest, *, template_kwargs: bool) -> JSONObject:
    if req.reasoning is None:
        return {}
    effort = _effort(req.reasoning)
    if not template_kwargs:
        return {} if effort is None else {"reasoning_effort": effort}
    out: JSONObject = {
        "chat_template_kwargs": _template_kwargs(
            req.reasoning, req.extra.get("chat_template_kwargs")
        )
    }
    if effort in _TEMPLATE_LEVELS:  # engines that read it refuse words beyond these
        out["reasoning_effort"] = effort
    return out


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
    }
    return {k: v for k, v in candidates.items() if v is not None}


def encode_request(
    req: ChatRequest, *, template_kwargs: bool = False, reasoning_history: bool = True
) -> dict[str, Any]:
    """A JSON-ready chat-completions body; `extra` keys go in, never over modelled ones.

    Thinking goes as `reasoning_effort`; with `template_kwargs` (an engine whose chat
    templates take the switch: llama-server, vLLM) also as `chat_template_kwargs`.
    Earlier thinking goes back as `reasoning_content` (+ our `reasoning_signature`) unless
    `reasoning_history` is off, for an engine that refuses fields it does not know (OpenAI).
    System messages keep their place in the conversation.
    """
    messages: list[JSONObject] = []
    if req.system is not None:
        messages.append({"role": "system", "content": req.system})
    for msg in req.messages:
        messages.extend(_message_json(msg, reasoning_history=reasoning_history))
    body: JSONObject = dict(req.extra)
    body.update(
        model=req.model,
        messages=messages,
        **_options_json(req),
        **_reasoning_json(req, template_kwargs=template_kwargs),
        stream=req.stream,
    )
    return body

"""The Messages API as Claude Code 2.1.332 speaks it (docs/captures/clients/claude-code-*).

Its requests carry a system message inside `messages` (besides `system`), adaptive thinking
with `output_config.effort`, and fields we do not model (metadata, context_management,
defer_loading, cache_control). Every captured body must decode; the system message keeps its
place through every encoder; thinking maps onto each engine's controls.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from modelport.errors import InvalidRequest
from modelport.types import ChatRequest, Message, Reasoning, Text, Thinking, ToolCall
from modelport.wire import anthropic, ollama, openai
from tests.captures import ClientRequest, client_requests

PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
CLAUDE_CODE = client_requests("claude-code-*.jsonl")
# The first request of a round trip, then its follow-up ([user, system, assistant, user]).
ROUND_TRIP = {r.name: r for r in CLAUDE_CODE}["claude-code-tool-bash-thinking#2"]


def test_the_captures_are_there() -> None:
    assert len(CLAUDE_CODE) >= 25
    assert all(r.path == "/v1/messages" and r.query == {"beta": "true"} for r in CLAUDE_CODE)


@pytest.mark.parametrize("captured", CLAUDE_CODE, ids=lambda r: r.name)
def test_every_captured_request_decodes(captured: ClientRequest) -> None:
    body = captured.body
    req = anthropic.decode_request(body)
    roles = [m["role"] for m in body["messages"]]
    assert roles[1] == "system"
    # The system message stays at its place; the top-level system stays `system`.
    assert req.messages[1].role == "system"
    assert req.messages[1].text.startswith("# Environment")
    assert req.system is not None and req.system.startswith("x-anthropic-billing-header")
    effort = body["output_config"]["effort"]
    display = body["thinking"].get("display")
    assert req.reasoning == Reasoning(effort=effort, adaptive=True, display=display)
    assert req.max_tokens == body["max_tokens"]  # 32000; 128000 for its default model
    assert req.tools is not None and len(req.tools) == len(body["tools"])
    # What we do not model travels in extra, for an engine that speaks Messages.
    assert req.extra["metadata"] == body["metadata"]
    assert req.extra["context_management"] == body["context_management"]
    assert "thinking" not in req.extra and "output_config" not in req.extra


def test_a_round_trip_keeps_the_system_message_in_place() -> None:
    req = anthropic.decode_request(ROUND_TRIP.body)
    assert [m.role for m in req.messages] == ["user", "system", "assistant", "tool"]
    assistant = req.messages[2]
    assert assistant.content[0] == Thinking("I should run it.", "cmVjb3JkZXItc2lnbmF0dXJl")
    assert isinstance(assistant.content[1], ToolCall)

    body = anthropic.encode_request(req)
    assert [m["role"] for m in body["messages"]] == ["user", "system", "assistant", "user"]
    assert body["messages"][1]["content"] == req.messages[1].text
    assert body["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert body["output_config"] == {"effort": "high"}
    assert body["metadata"] == ROUND_TRIP.body["metadata"]
    assert anthropic.decode_request(body) == req


def test_transcoding_to_chat_completions_keeps_the_system_message_in_place() -> None:
    req = anthropic.decode_request(ROUND_TRIP.body)
    body = openai.encode_request(req)
    roles = [m["role"] for m in body["messages"]]
    # The top-level system first, then the conversation with its system message at its place.
    assert roles == ["system", "user", "system", "assistant", "tool"]
    assert body["messages"][2]["content"] == req.messages[1].text
    assert body["messages"][3]["reasoning_content"] == "I should run it."
    assert body["reasoning_effort"] == "high"
    assert "chat_template_kwargs" not in body
    assert body["max_tokens"] == 32000


def test_transcoding_to_ollama_keeps_the_system_message_in_place() -> None:
    req = anthropic.decode_request(ROUND_TRIP.body)
    body = ollama.encode_chat_request(req, stream=True)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "system", "assistant", "tool"]
    assert body["messages"][2]["content"] == req.messages[1].text
    assert body["think"] is True
    gpt_oss = ollama.encode_chat_request(_with(req, model="gpt-oss:20b"), stream=True)
    assert gpt_oss["think"] == "high"


def _with(req: ChatRequest, **changes: Any) -> ChatRequest:
    return msgspec.structs.replace(req, **changes)


# -- thinking: Anthropic's controls -> canonical -> each engine's -----------------------------


def _decode(**fields: Any) -> ChatRequest:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    return anthropic.decode_request({**body, **fields})


@pytest.mark.parametrize(
    ("fields", "reasoning", "extra"),
    [
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}},
            Reasoning(effort="max", adaptive=True),
            {},
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2000, "display": "summarized"}},
            Reasoning(budget_tokens=2000, display="summarized"),
            {},
        ),
        (
            {
                "thinking": {"type": "enabled", "budget_tokens": 2000},
                "output_config": {"effort": "low"},
            },
            Reasoning(budget_tokens=2000, effort="low"),
            {},
        ),
        ({"thinking": {"type": "disabled"}}, Reasoning(effort="none"), {}),
        # Effort without thinking is about text, not thinking: it stays Anthropic's.
        (
            {"thinking": {"type": "disabled"}, "output_config": {"effort": "low"}},
            Reasoning(effort="none"),
            {"output_config": {"effort": "low"}},
        ),
        ({"output_config": {"effort": "low"}}, None, {"output_config": {"effort": "low"}}),
    ],
)
def test_thinking_controls_decode(
    fields: dict[str, Any], reasoning: Reasoning | None, extra: dict[str, Any]
) -> None:
    req = _decode(**fields)
    assert (req.reasoning, req.extra) == (reasoning, extra)
    # Encoded back for an engine that speaks Messages, the controls are what the client sent.
    body = anthropic.encode_request(req)
    if fields.get("thinking", {}).get("type") != "disabled":  # off is Anthropic's default
        assert body.get("thinking") == fields.get("thinking")
    assert body.get("output_config") == fields.get("output_config")


@pytest.mark.parametrize(
    ("reasoning", "effort", "template"),
    [
        (
            Reasoning(effort="high", adaptive=True),
            "high",
            {"enable_thinking": True, "reasoning_effort": "high"},
        ),
        (
            Reasoning(effort="max", adaptive=True),
            "high",
            {"enable_thinking": True, "reasoning_effort": "high"},
        ),
        (Reasoning(effort="none"), "none", {"enable_thinking": False}),
        (
            Reasoning(budget_tokens=2000),
            "low",
            {"enable_thinking": True, "reasoning_effort": "low"},
        ),
        (Reasoning(adaptive=True), None, {"enable_thinking": True}),
        (Reasoning(effort="xhigh"), "xhigh", {"enable_thinking": True}),
    ],
)
def test_thinking_controls_for_chat_completions_engines(
    reasoning: Reasoning, effort: str | None, template: dict[str, Any]
) -> None:
    req = ChatRequest(model="m", messages=(Message.user("hi"),), reasoning=reasoning)
    assert openai.encode_request(req).get("reasoning_effort") == effort
    # llama-server and vLLM (their profile rows) also get the template switch; their
    # reasoning_effort is one of the levels they know, or absent.
    body = openai.encode_request(req, template_kwargs=True)
    assert body["chat_template_kwargs"] == template
    assert body.get("reasoning_effort") == (effort if effort in ("low", "medium", "high") else None)


def test_the_clients_own_template_kwargs_win() -> None:
    req = ChatRequest(
        model="m",
        messages=(Message.user("hi"),),
        reasoning=Reasoning(effort="none"),
        extra={"chat_template_kwargs": {"enable_thinking": True, "custom": 1}},
    )
    body = openai.encode_request(req, template_kwargs=True)
    assert body["chat_template_kwargs"] == {"enable_thinking": True, "custom": 1}
    # No thinking asked: the client's kwargs travel untouched, as any extra field.
    plain = openai.encode_request(_with(req, reasoning=None), template_kwargs=True)
    assert plain["chat_template_kwargs"] == {"enable_thinking": True, "custom": 1}


@pytest.mark.parametrize(
    ("reasoning", "think"),
    [
        (Reasoning(effort="max", adaptive=True), "high"),
        (Reasoning(effort="xhigh"), "high"),
        (Reasoning(effort="none"), False),
    ],
)
def test_thinking_levels_for_ollama_gpt_oss(reasoning: Reasoning, think: object) -> None:
    req = ChatRequest(model="gpt-oss:20b", messages=(Message.user("hi"),), reasoning=reasoning)
    assert ollama.encode_chat_request(req, stream=False)["think"] == think


# -- system messages in other places ------------------------------------------------------


def test_system_messages_the_messages_api_refuses_there_join_the_system_prompt() -> None:
    req = ChatRequest(
        model="m",
        system="Top.",
        messages=(
            Message.user("a"),
            Message.system("One."),
            Message("system", (Text("Two."), Text("Three."))),
            Message.assistant("b"),
            Message.system("After the assistant."),
            Message.user("c"),
        ),
    )
    body = anthropic.encode_request(req)
    assert body["system"] == "Top.\n\nAfter the assistant."
    assert body["messages"] == [
        {"role": "user", "content": "a"},
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "One."},
                {"type": "text", "text": "Two."},
                {"type": "text", "text": "Three."},
            ],
        },
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    # Chat Completions takes system messages anywhere: each at its place, parts joined as
    # Anthropic's system blocks are.
    messages = openai.encode_request(req)["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "system",
        "system",
        "assistant",
        "system",
        "user",
    ]
    assert messages[3]["content"] == "Two.\n\nThree."


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "system", "content": [{"type": "image", "source": PNG}]},
                ]
            },
            "messages[1].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "system"}]},
            "messages[1].content",
        ),
        ({"thinking": {"type": "adaptive", "display": 1}}, "thinking.display"),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": 3}},
            "output_config.effort",
        ),
    ],
)
def test_what_is_really_invalid_is_refused_naming_the_field(
    fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _decode(**fields)
    assert caught.value.param == param
    assert caught.value.message.startswith(param + ":")

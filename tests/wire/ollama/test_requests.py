"""Ollama codec, requests: /api/chat bodies, think values, formats, tools and images."""

from __future__ import annotations

import msgspec
import pytest

from modelport.errors import Unsupported
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
from modelport.wire import ollama

# -- requests ----------------------------------------------------------------------


def test_encode_full_request() -> None:
    request = ChatRequest(
        model="qwen3:8b",
        system="Be brief.",
        messages=(
            Message(
                "user",
                (Text("What is in this picture?"), Image(data="iVBORw0K", media_type="image/png")),
            ),
            Message(
                "assistant",
                (
                    Thinking("Looks like a cat."),
                    Text("Let me check."),
                    ToolCall("call_1", "lookup", {"q": "cat", "n": 2}),
                ),
            ),
            Message("tool", (ToolResult("call_1", (Text("a cat"),)),)),
        ),
        tools=(
            Tool("lookup", "Search", {"type": "object", "properties": {"q": {"type": "string"}}}),
        ),
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        stop=("\n\n", "END"),
        reasoning=Reasoning(effort="high"),
        response_format={"type": "json_object"},
        extra={"keep_alive": "10m", "seed": 7, "options": {"num_ctx": 8192}},
    )
    assert ollama.encode_chat_request(request, stream=True) == {
        "model": "qwen3:8b",
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is in this picture?", "images": ["iVBORw0K"]},
            {
                "role": "assistant",
                "content": "Let me check.",
                "thinking": "Looks like a cat.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "function": {"name": "lookup", "arguments": {"q": "cat", "n": 2}},
                    }
                ],
            },
            {"role": "tool", "content": "a cat", "tool_call_id": "call_1", "tool_name": "lookup"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "Search",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
        "think": True,  # a level only for gpt-oss
        "format": "json",
        "options": {
            "num_ctx": 8192,
            "seed": 7,
            "temperature": 0.2,
            "top_p": 0.9,
            "num_predict": 64,
            "stop": ["\n\n", "END"],
        },
        "keep_alive": "10m",
    }


def test_encode_minimal_request_has_no_optional_fields() -> None:
    body = ollama.encode_chat_request(
        ChatRequest(model="m", messages=(Message.user("hi"),)), stream=False
    )
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}


@pytest.mark.parametrize(
    ("model", "reasoning", "think"),
    [
        ("gpt-oss:20b", Reasoning(effort="low"), "low"),
        ("gpt-oss:120b", Reasoning(effort="HIGH"), "high"),
        ("gpt-oss:20b", Reasoning(effort="minimal"), True),
        ("qwen3:8b", Reasoning(effort="medium"), True),
        ("qwen3:8b", Reasoning(budget_tokens=2048), True),
        ("qwen3:8b", Reasoning(), True),
        ("qwen3:8b", Reasoning(effort="none"), False),
    ],
)
def test_think_values(model: str, reasoning: Reasoning, think: object) -> None:
    request = ChatRequest(model=model, messages=(Message.user("hi"),), reasoning=reasoning)
    assert ollama.encode_chat_request(request, stream=True)["think"] == think


def test_json_schema_becomes_format() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    request = ChatRequest(
        model="m",
        messages=(Message.user("hi"),),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema},
        },
    )
    assert ollama.encode_chat_request(request, stream=True)["format"] == schema


def test_extra_never_overrides_owned_fields_but_fills_format() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message.user("hi"),),
        extra={"model": "evil", "stream": False, "format": "json", "truncate": True},
    )
    body = ollama.encode_chat_request(request, stream=True)
    assert (body["model"], body["stream"], body["format"], body["truncate"]) == (
        "m",
        True,
        "json",
        True,
    )


def test_tool_choice_none_withholds_tools() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message.user("hi"),),
        tools=(Tool("t"),),
        tool_choice=ToolChoice("none"),
    )
    assert "tools" not in ollama.encode_chat_request(request, stream=True)


def test_tool_results_split_out_of_a_user_message_and_unknown_names_are_omitted() -> None:
    request = ChatRequest(
        model="m",
        messages=(
            Message(
                "user",
                (
                    ToolResult("call_x", (Text("42"), Image(data="AAAA", media_type="image/png"))),
                    Text("and now?"),
                ),
            ),
        ),
    )
    assert ollama.encode_chat_request(request, stream=True)["messages"] == [
        {"role": "tool", "content": "42", "tool_call_id": "call_x", "images": ["AAAA"]},
        {"role": "user", "content": "and now?"},
    ]


def test_data_url_image_is_unwrapped_and_remote_url_refused() -> None:
    inline = ChatRequest(
        model="m", messages=(Message("user", (Image(url="data:image/png;base64,QUJD"),)),)
    )
    assert ollama.encode_chat_request(inline, stream=True)["messages"][0]["images"] == ["QUJD"]
    remote = ChatRequest(
        model="m", messages=(Message("user", (Image(url="https://x.test/a.png"),)),)
    )
    with pytest.raises(Unsupported):
        ollama.encode_chat_request(remote, stream=True)


def test_encoded_request_survives_json() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message("user", (Text("hi"), Image(data="AAAA", media_type="image/png"))),),
        tools=(Tool("t", None, {"type": "object"}),),
        stop=("x",),
        extra={"keep_alive": 0},
    )
    body = ollama.encode_chat_request(request, stream=True)
    assert msgspec.json.decode(msgspec.json.encode(body)) == body
    assert body["tools"][0]["function"]["description"] == ""

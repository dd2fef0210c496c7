"""OpenAI codec, requests: decoding every field, encoding, and refusing invalid bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.errors import InvalidRequest
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
from modelport.wire import openai

# ---------------------------------------------------------------------------
# Requests


def test_decode_request_full():
    body = {
        "model": "qwen3",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/a.jpg", "detail": "low"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning": "need weather",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "time", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "noon"}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Forecast",
                    "parameters": {"type": "object"},
                },
            },
            {"type": "function", "function": {"name": "time"}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": False,
        "max_completion_tokens": 64,
        "temperature": 1,
        "top_p": 0.5,
        "stop": "END",
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 7,
        "venice_parameters": {"include_venice_system_prompt": False},
    }
    assert openai.decode_request(json.dumps(body).encode()) == ChatRequest(
        model="qwen3",
        system="Be brief.\n\nUse tools.",
        messages=(
            Message(
                "user",
                (
                    Text("What is this?"),
                    Image(data="iVBORw==", media_type="image/png"),
                    Image(url="https://x.test/a.jpg"),
                ),
            ),
            Message(
                "assistant",
                (
                    Thinking("need weather"),
                    ToolCall("call_1", "weather", {"city": "Oslo"}),
                    ToolCall("call_2", "time", {}),
                ),
            ),
            Message(
                "tool",
                (ToolResult("call_1", (Text("rain"),)), ToolResult("call_2", (Text("noon"),))),
            ),
        ),
        tools=(Tool("weather", "Forecast", {"type": "object"}), Tool("time")),
        tool_choice=ToolChoice("named", "weather"),
        parallel_tool_calls=False,
        max_tokens=64,
        temperature=1.0,
        top_p=0.5,
        stop=("END",),
        response_format={"type": "json_object"},
        reasoning=Reasoning(effort="low"),
        stream=True,
        extra={"seed": 7, "venice_parameters": {"include_venice_system_prompt": False}},
    )


def test_encode_request_shape():
    req = ChatRequest(
        model="m",
        system="sys",
        messages=(
            Message.user("hi"),
            Message("assistant", (Thinking("t", "sig"), ToolCall("call_1", "f", {"a": 1}))),
            Message("tool", (ToolResult("call_1", (Text("r"),)),)),
        ),
        tools=(Tool("f"),),
        tool_choice=ToolChoice("required"),
        max_tokens=10,
        stop=("x",),
        reasoning=Reasoning(budget_tokens=20_000),
        extra={"seed": 1, "model": "ignored"},
    )
    assert openai.encode_request(req) == {
        "seed": 1,
        "model": "m",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "t",
                "reasoning_signature": "sig",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "r"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "required",
        "max_tokens": 10,
        "stop": ["x"],
        "reasoning_effort": "high",
        "stream": False,
    }


def test_encode_request_splits_mixed_user_message():
    """An Anthropic user turn holding tool results and text becomes tool + user messages."""
    req = ChatRequest(
        model="m",
        messages=(
            Message("user", (ToolResult("c1", (Text("42"),), is_error=True), Text("thanks"))),
        ),
    )
    assert openai.encode_request(req)["messages"] == [
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "user", "content": "thanks"},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": "bad"}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "", "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": 3, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}],
            },
            "messages[0].content[0].text",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}],
            },
            "messages[0].tool_calls[0].id",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"},
            "tool_choice",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": {"type": "function"},
            },
            "tool_choice.function.name",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": {}}, "tools"),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search"}],
            },
            "tools[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"function": {}}],
            },
            "tools[0].function.name",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"},
            "max_tokens",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": True},
            "temperature",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str):
    with pytest.raises(InvalidRequest) as info:
        openai.decode_request(body)
    assert info.value.param == param
    assert param.split(".")[-1].split("[")[0] in info.value.message
    assert info.value.status == 400


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_request_body_must_be_a_json_object(body: bytes):
    with pytest.raises(InvalidRequest):
        openai.decode_request(body)


def test_request_nulls_mean_absent_and_empty_tools_mean_none():
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [],
        "temperature": None,
        "stop": None,
        "stream": None,
        "max_tokens": 5,
    }
    assert openai.decode_request(body) == ChatRequest(
        model="m", messages=(Message.user("x"),), max_tokens=5
    )


def test_assistant_content_parts_and_arguments_object_are_accepted():
    body = {
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"k": 1}}}],
            }
        ],
    }
    assert openai.decode_request(body).messages == (
        Message("assistant", (Text("a"), Text("no"), ToolCall("c", "f", {"k": 1}))),
    )


def test_image_data_url_without_media_type_round_trips():
    req = ChatRequest(model="m", messages=(Message("user", (Image(data="AAAA"),)),))
    encoded = openai.encode_request(req)
    assert encoded["messages"][0]["content"][0]["image_url"]["url"] == "data:;base64,AAAA"
    assert openai.decode_request(encoded) == req

"""Anthropic codec, requests: every field, count_tokens bodies, refusals, encoding."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from modelport.errors import InvalidRequest, Unsupported
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
from modelport.wire import anthropic

# ---------------------------------------------------------------------------
# Requests


FULL_REQUEST: dict[str, Any] = {
    "model": "claude-x",
    "max_tokens": 512,
    "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?", "cache_control": {"type": "ephemeral"}},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look first.", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": 1}},
                {"type": "tool_use", "id": "toolu_2", "name": "zoom", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "blurry"}],
                    "is_error": True,
                },
                {"type": "text", "text": "And now?"},
            ],
        },
    ],
    "tools": [
        {
            "name": "look",
            "description": "Look at it",
            "input_schema": {"type": "object", "properties": {"q": {"type": "integer"}}},
        },
        {"name": "zoom", "input_schema": {"type": "object"}},
    ],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "temperature": 0.5,
    "top_p": 1,
    "stop_sequences": ["END"],
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "stream": True,
    "metadata": {"user_id": "u1"},
    "top_k": 40,
}


def test_decode_request_maps_every_field() -> None:
    req = anthropic.decode_request(json.dumps(FULL_REQUEST).encode())
    assert req == ChatRequest(
        model="claude-x",
        system="Be brief.\n\nBe kind.",
        messages=(
            Message(
                "user",
                (
                    Text("What is here?"),
                    Image(data="iVBORw0", media_type="image/png"),
                    Image(url="https://example.com/a.jpg"),
                ),
            ),
            Message(
                "assistant",
                (
                    Thinking("Look first.", "sig=="),
                    Thinking("", "redacted_thinking:opaque"),
                    Text("Checking."),
                    ToolCall("toolu_1", "look", {"q": 1}),
                    ToolCall("toolu_2", "zoom", {}),
                ),
            ),
            Message(
                "tool",
                (
                    ToolResult("toolu_1", (Text("a cat"),)),
                    ToolResult("toolu_2", (Text("blurry"),), is_error=True),
                ),
            ),
            Message("user", (Text("And now?"),)),
        ),
        tools=(
            Tool(
                "look", "Look at it", {"type": "object", "properties": {"q": {"type": "integer"}}}
            ),
            Tool("zoom", None, {}),
        ),
        tool_choice=ToolChoice("required"),
        parallel_tool_calls=False,
        max_tokens=512,
        temperature=0.5,
        top_p=1.0,
        stop=("END",),
        reasoning=Reasoning(budget_tokens=2048),
        stream=True,
        extra={"metadata": {"user_id": "u1"}, "top_k": 40},
    )


def test_decode_request_accepts_a_dict_and_string_content() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "system": "sys",
        "messages": [{"role": "user", "content": "hi"}],
    }
    req = anthropic.decode_request(body)
    assert req == ChatRequest(model="m", system="sys", max_tokens=5, messages=(Message.user("hi"),))


def test_tool_results_keep_their_place_among_user_blocks() -> None:
    content = [
        {"type": "text", "text": "before"},
        {"type": "tool_result", "tool_use_id": "a"},
        {"type": "tool_result", "tool_use_id": "b", "content": "B"},
        {"type": "text", "text": "after"},
    ]
    req = anthropic.decode_request(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
    )
    assert req.messages == (
        Message("user", (Text("before"),)),
        Message("tool", (ToolResult("a", ()), ToolResult("b", (Text("B"),)))),
        Message("user", (Text("after"),)),
    )
    assert anthropic.encode_request(req)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "before"},
                {"type": "tool_result", "tool_use_id": "a"},
                {"type": "tool_result", "tool_use_id": "b", "content": "B"},
                {"type": "text", "text": "after"},
            ],
        }
    ]


HI = [{"role": "user", "content": "hi"}]


def test_tool_choices_and_thinking_kinds() -> None:
    def decode(**fields: Any) -> ChatRequest:
        body = {"model": "m", "max_tokens": 5, "messages": HI, **fields}  # [] is refused
        return anthropic.decode_request(body)

    assert decode(tool_choice={"type": "auto"}).tool_choice == ToolChoice("auto")
    assert decode(tool_choice={"type": "none"}).tool_choice == ToolChoice("none")
    named = decode(tool_choice={"type": "tool", "name": "f", "disable_parallel_tool_use": False})
    assert (named.tool_choice, named.parallel_tool_calls) == (ToolChoice("named", "f"), True)
    adaptive = decode(thinking={"type": "adaptive"})
    assert (adaptive.reasoning, adaptive.extra) == (None, {"thinking": {"type": "adaptive"}})


def test_output_config_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    config = {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}
    req = anthropic.decode_request(
        {"model": "m", "max_tokens": 5, "messages": HI, "output_config": config}
    )
    assert req.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert req.extra == {"output_config": {"effort": "low"}}
    assert anthropic.encode_request(req)["output_config"] == config


def test_count_tokens_request_needs_no_max_tokens() -> None:
    req = anthropic.decode_count_tokens_request(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    )
    assert req == ChatRequest(model="m", messages=(Message.user("hi"),))
    assert anthropic.encode_count_tokens_response(42) == b'{"input_tokens":42}'
    with pytest.raises(InvalidRequest) as caught:
        anthropic.decode_request(b'{"model": "m", "messages": []}')
    assert caught.value.param == "max_tokens"


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not DROP}


DROP = object()


def _content(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (_body(messages="bad"), "messages"),
        (_body(messages=DROP), "messages"),
        (_body(model=DROP), "model"),
        (_body(model=7), "model"),
        (_body(max_tokens=DROP), "max_tokens"),
        (_body(max_tokens="10"), "max_tokens"),
        (_body(max_tokens=True), "max_tokens"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(messages=["hi"]), "messages[0]"),
        (_body(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"role": "user"}]), "messages[0].content"),
        (_body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_body(messages=_content({"text": "x"})), "messages[0].content[0].type"),
        (_body(messages=_content({"type": "text"})), "messages[0].content[0].text"),
        (_body(messages=_content({"type": "video"})), "messages[0].content[0].type"),
        (
            _body(
                messages=_content(
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}
                )
            ),
            "messages[0].content[0].source.data",
        ),
        (
            _body(messages=_content({"type": "tool_use", "id": "t", "name": "f", "input": "{}"})),
            "messages[0].content[0].input",
        ),
        (
            _body(
                messages=_content(
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "thinking", "thinking": "x"}],
                    }
                )
            ),
            "messages[0].content[0].content[0]",
        ),
        (_body(messages=_content({"type": "tool_result"})), "messages[0].content[0].tool_use_id"),
        (_body(system=5), "system"),
        (_body(system=[{"type": "image"}]), "system[0].type"),
        (_body(tools=[{"name": "f"}]), "tools[0].input_schema"),
        (_body(tools=[{"input_schema": {}}]), "tools[0].name"),
        (_body(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (_body(tool_choice={"type": "tool"}), "tool_choice.name"),
        (
            _body(tool_choice={"type": "auto", "disable_parallel_tool_use": "yes"}),
            "tool_choice.disable_parallel_tool_use",
        ),
        (_body(temperature="hot"), "temperature"),
        (_body(top_p=False), "top_p"),
        (_body(stop_sequences="END"), "stop_sequences"),
        (_body(stop_sequences=["END", 3]), "stop_sequences[1]"),
        (_body(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (_body(stream="yes"), "stream"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        anthropic.decode_request(json.dumps(body).encode())
    assert caught.value.param == param
    assert param in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_bodies_that_are_not_objects_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        anthropic.decode_request(body)


@pytest.mark.parametrize(
    "body",
    [
        _body(messages=_content({"type": "document", "source": {}})),
        _body(messages=_content({"type": "image", "source": {"type": "file", "file_id": "f"}})),
        _body(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
    ],
)
def test_what_the_canonical_types_cannot_carry_is_unsupported(body: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        anthropic.decode_request(body)


def test_encode_request_defaults_and_folding() -> None:
    req = ChatRequest(
        model="m",
        system="Top.",
        messages=(
            Message.system("Also this."),
            Message("user", (Image(url="data:image/jpeg;base64,/9j/AAAA"), Image(data="iVBORxx"))),
            Message("assistant", (Thinking("hm"), ToolCall("c1", "f", {"a": [1]}))),
            Message("tool", (ToolResult("c1", (Text("ok"),)),)),
            Message("tool", (ToolResult("c2", ()),)),
        ),
        tools=(Tool("f"),),
        parallel_tool_calls=False,
        reasoning=Reasoning(effort="high"),
        extra={"seed": 3, "model": "ignored"},
    )
    assert anthropic.encode_request(req) == {
        "model": "m",
        "max_tokens": 4096,
        "system": "Top.\n\nAlso this.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/jpeg",
                            "data": "/9j/AAAA",
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORxx"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm"},
                    {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": [1]}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "ok"}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c2"}]},
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 4095},
        "seed": 3,
    }


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking"),
    [
        (Reasoning(effort="low"), 100_000, {"type": "enabled", "budget_tokens": 2048}),
        (Reasoning(effort="medium"), 100_000, {"type": "enabled", "budget_tokens": 8192}),
        (Reasoning(effort="none"), 100_000, None),
        (Reasoning(effort="high"), 1000, None),  # no budget of at least 1024 fits
        (
            Reasoning(budget_tokens=5000, effort="low"),
            100_000,
            {"type": "enabled", "budget_tokens": 5000},
        ),
    ],
)
def test_reasoning_becomes_a_thinking_budget(
    reasoning: Reasoning, max_tokens: int, thinking: dict[str, Any] | None
) -> None:
    req = ChatRequest(model="m", messages=(), max_tokens=max_tokens, reasoning=reasoning)
    assert anthropic.encode_request(req).get("thinking") == thinking


def test_tool_choice_none_takes_no_parallel_flag() -> None:
    req = ChatRequest(
        model="m", messages=(), tool_choice=ToolChoice("none"), parallel_tool_calls=False
    )
    assert anthropic.encode_request(req)["tool_choice"] == {"type": "none"}


def test_response_formats() -> None:
    schema = {"type": "object"}
    wanted = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    req = ChatRequest(model="m", messages=(), response_format=wanted)
    assert anthropic.encode_request(req)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
    plain = msgspec.structs.replace(req, response_format={"type": "text"})
    assert "output_config" not in anthropic.encode_request(plain)
    with pytest.raises(Unsupported):
        anthropic.encode_request(
            msgspec.structs.replace(req, response_format={"type": "json_object"})
        )

"""Responses codec, requests: input items, tools, text.format, refusals by name."""

from __future__ import annotations

from typing import Any

import pytest

from modelport.errors import InvalidRequest
from modelport.types import Image, Message, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from modelport.wire import responses


def decode(**body: Any) -> Any:
    return responses.decode_request({"model": "m", "input": "hi", **body})


def refused(**body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        responses.decode_request({"model": "m", **body})
    return caught.value


def test_string_input_is_one_user_message() -> None:
    req = decode()
    assert req.messages == (Message.user("hi"),)
    assert req.stream is False


def test_codex_history_becomes_turns() -> None:
    """What Codex CLI sends every turn: developer text, user parts, reasoning, a call and
    its output, all as items."""
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "D"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok"}],
        },
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": '{"cmd":"ls"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ]
    req = decode(input=items, instructions="I")
    assert req.system == "I\n\nD"
    assert req.messages == (
        Message.user("ls?"),
        Message("assistant", (Text("ok"), ToolCall("c1", "shell", {"cmd": "ls"}))),
        Message("tool", (ToolResult("c1", (Text("a.txt"),)),)),
    )


def test_images_inline_and_by_url() -> None:
    parts = [
        {"type": "input_image", "image_url": "data:image/png;base64,QUJD", "detail": "auto"},
        {"type": "input_image", "image_url": "https://x/y.png"},
    ]
    req = decode(input=[{"role": "user", "content": parts}])
    assert req.messages[0].content == (
        Image(data="QUJD", media_type="image/png"),
        Image(url="https://x/y.png"),
    )


def test_tools_namespaces_unwrapped_hosted_dropped() -> None:
    tools = [
        {"type": "function", "name": "f", "description": "F", "parameters": {"type": "object"}},
        {"type": "web_search"},
        {"type": "file_search", "vector_store_ids": ["v"]},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "mcp", "server_label": "x"},
        {"type": "local_shell"},
        {
            "type": "namespace",
            "name": "crm",
            "description": "d",
            "tools": [{"type": "function", "name": "get"}],
        },
        {
            "type": "namespace",
            "name": "mcp__gh__",
            "description": "d",
            "tools": [{"type": "function", "name": "pr"}],
        },
    ]
    req = decode(tools=tools, tool_choice={"type": "function", "name": "f"})
    assert req.tools == (
        Tool("f", "F", {"type": "object"}),
        Tool("crm__get", None, {}),
        Tool("mcp__gh__pr", None, {}),
    )
    assert req.tool_choice == ToolChoice("named", "f")


@pytest.mark.parametrize(
    ("choice", "want"),
    [
        ("auto", ToolChoice("auto")),
        ("required", ToolChoice("required")),
        ({"type": "allowed_tools", "mode": "required", "tools": []}, ToolChoice("required")),
        ({"type": "web_search_preview"}, ToolChoice("auto")),
        ({"type": "function", "name": "get", "namespace": "crm"}, ToolChoice("named", "crm__get")),
    ],
)
def test_tool_choice(choice: Any, want: ToolChoice) -> None:
    assert decode(tool_choice=choice).tool_choice == want


def test_options_map_to_canonical() -> None:
    schema = {"type": "object"}
    req = decode(
        max_output_tokens=64,
        temperature=0.5,
        top_p=0.9,
        parallel_tool_calls=False,
        reasoning={"effort": "low", "summary": "auto"},
        text={"format": {"type": "json_schema", "name": "n", "schema": schema, "strict": True}},
        store=False,
        include=["reasoning.encrypted_content"],
        prompt_cache_key="k",
        metadata={"a": "b"},
        service_tier="auto",
        truncation="auto",
        user="u",
        stream=True,
    )
    assert (req.max_tokens, req.temperature, req.top_p) == (64, 0.5, 0.9)
    assert req.parallel_tool_calls is False
    assert req.reasoning == Reasoning(effort="low")
    assert req.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "n", "schema": schema, "strict": True},
    }
    assert req.stream is True
    assert req.extra["prompt_cache_key"] == "k"  # echoed in the answer, never sent elsewhere


def test_json_object_and_text_formats() -> None:
    assert decode(text={"format": {"type": "json_object"}}).response_format == {
        "type": "json_object"
    }
    assert decode(text={"format": {"type": "text"}, "verbosity": "low"}).response_format is None


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id", "not supported"),
        ({"input": "x", "conversation": "conv_1"}, "conversation", "not supported"),
        ({"input": "x", "prompt": {"id": "p"}}, "prompt", "not supported"),
        ({"input": "x", "background": True}, "background", "not supported"),
        ({}, "input", "input: field required"),
        ({"input": 3}, "input", "expected a string or an array of input items, got number"),
        (
            {"input": [{"role": "robot", "content": "x"}]},
            "input[0].role",
            "'robot' is not supported",
        ),
        ({"input": [{"type": "item_reference", "id": "m"}]}, "input[0]", "not supported"),
        ({"input": [{"type": "teleport"}]}, "input[0].type", "'teleport' is not supported"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]},
            "input[0].arguments",
            "is not valid JSON",
        ),
        ({"input": "x", "text": {"format": {"type": "grammar"}}}, "text.format.type", "'grammar'"),
        ({"input": "x", "max_output_tokens": "9"}, "max_output_tokens", "expected an integer"),
        ({"input": [{"role": "system", "content": "only system"}]}, "input", "at least one"),
    ],
)
def test_refused_by_name(body: dict[str, Any], param: str, message: str) -> None:
    err = refused(**body)
    assert err.param == param
    assert err.message.startswith(param + ":")
    assert message in err.message


def test_model_is_required_in_the_shared_wording() -> None:
    with pytest.raises(InvalidRequest, match=r"^model: field required$"):
        responses.decode_request({"input": "x"})


def test_custom_tools_and_their_calls() -> None:
    tools = [
        {
            "type": "custom",
            "name": "apply",
            "description": "Apply a patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
        }
    ]
    items = [
        {"role": "user", "content": "patch it"},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply", "input": "*** diff"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
    ]
    req = decode(input=items, tools=tools)
    (tool,) = req.tools
    assert tool.name == "apply" and tool.description == "Apply a patch"
    assert tool.parameters["required"] == ["input"]
    assert "start: /.+/" in tool.parameters["properties"]["input"]["description"]
    assert req.messages[1] == Message(
        "assistant", (ToolCall("c1", "apply", {"input": "*** diff"}),)
    )
    assert req.messages[2] == Message("tool", (ToolResult("c1", (Text("done"),)),))

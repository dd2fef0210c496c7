"""Real clients' /v1/responses requests (docs/captures/clients: Codex CLI 0.171.0 and
opencode 1.18.33 recorded against a recorder) decode, and carry what the engine needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelport.types import (
    ChatRequest,
    ChatResponse,
    Done,
    FinishReason,
    Message,
    Text,
    Tool,
    ToolCall,
    ToolResult,
)
from modelport.wire import responses
from tests.captures import CAPTURES

CLIENTS = CAPTURES / "clients"


def requests_in(path: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["body"] for r in records if r.get("path") == "/v1/responses"]


FILES = sorted(p for p in CLIENTS.glob("*.jsonl") if requests_in(p))


def test_there_are_captures() -> None:
    names = {p.name for p in FILES}
    assert {"codex-tool-namespace.jsonl", "codex-tool-custom-exec.jsonl"} <= names
    assert any(n.startswith("opencode-responses") for n in names)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_captured_request_decodes(path: Path) -> None:
    for body in requests_in(path):
        req = responses.decode_request(body)
        assert req.messages and req.stream is body.get("stream", False)
        names = [t.name for t in req.tools or ()]
        assert "web_search" not in names  # hosted: dropped
        assert len(names) == len(set(names))
        # What the answer echoes and maps back: encoding a reply must not fail.
        encoder = responses.StreamEncoder(id="resp_t", model="m", request=req)
        assert encoder.encode(Done(FinishReason.STOP))


def _last(name: str) -> ChatRequest:
    return responses.decode_request(requests_in(CLIENTS / name)[-1])


def _tool(req: ChatRequest, name: str) -> Tool:
    return next(t for t in req.tools or () if t.name == name)


def test_codex_namespaced_call_round_trip() -> None:
    req = _last("codex-tool-namespace.jsonl")
    assert _tool(req, "multi_agent_v1__close_agent")
    call = next(p for m in req.messages for p in m.content if isinstance(p, ToolCall))
    assert call.name == "multi_agent_v1__close_agent"
    assert call.arguments == {"target": "no-such-agent"}
    result = next(p for m in req.messages for p in m.content if isinstance(p, ToolResult))
    assert result.tool_call_id == call.id
    assert req.system and req.system.startswith("You are a coding agent running in the Codex CLI")


def test_codex_custom_tool_in_additional_tools_round_trip() -> None:
    """A known model: tools come in an `additional_tools` item, `exec` is a custom tool and
    its call and output come back as custom_tool_call items."""
    req = _last("codex-tool-custom-exec.jsonl")
    exec_tool = _tool(req, "functions__exec")
    assert exec_tool.parameters["required"] == ["input"]
    assert _tool(req, "clock__sleep").parameters["required"] == ["duration_ms"]
    call = next(p for m in req.messages for p in m.content if isinstance(p, ToolCall))
    assert call.name == "functions__exec"
    assert call.arguments["input"].startswith("const r = await tools.exec_command")
    result = next(p for m in req.messages for p in m.content if isinstance(p, ToolResult))
    assert result.content == (
        Text("Script completed\nWall time 0.2 seconds\nOutput:\n"),
        Text("hi\n"),
    )
    # A new call to the custom tool goes back as a custom_tool_call with its input.
    answer = json.loads(
        responses.encode_response(
            _response(ToolCall("c7", "functions__exec", {"input": "text('x')"})), request=req
        )
    )
    (item,) = answer["output"]
    assert item["type"] == "custom_tool_call"
    assert (item["name"], item["namespace"], item["input"]) == ("exec", "functions", "text('x')")


def _response(call: ToolCall) -> ChatResponse:
    return ChatResponse(
        id="r",
        model="m",
        message=Message("assistant", (call,)),
        finish_reason=FinishReason.TOOL_CALLS,
    )

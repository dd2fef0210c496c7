"""The recorder answers so the official SDKs parse it, and logs what it got without secrets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.clients.recorder import Script, start

TOOL = {"type": "function", "name": "get_x", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    log = tmp_path / "requests.jsonl"
    script = Script(tool_name="get_x", tool_args={"a": 1}, reasoning="thinking")
    runner, port = await start(log, script)
    yield port, log
    await runner.cleanup()


def entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


async def test_responses_stream_text_and_tool_call(recorder: tuple[int, Path]) -> None:
    port, log = recorder
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x") as sdk:
        async with sdk.responses.stream(model="m", input="hi") as stream:
            text = await stream.get_final_response()
        async with sdk.responses.stream(model="m", input="hi", tools=[TOOL]) as stream:  # type: ignore[list-item]
            call = await stream.get_final_response()
        whole = await sdk.responses.create(model="m", input="hi")
    assert text.output_text == "hi from the recorder"
    assert [item.type for item in call.output] == ["reasoning", "function_call"]
    assert whole.usage is not None and whole.usage.total_tokens == 17
    assert [e["answered"] for e in entries(log)] == ["text", "tool", "text"]


async def test_tool_result_gets_text(recorder: tuple[int, Path]) -> None:
    port, _ = recorder
    result = {"type": "function_call_output", "call_id": "c1", "output": "1"}
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x") as sdk:
        reply = await sdk.responses.create(model="m", input=[result], tools=[TOOL])  # type: ignore[list-item]
    assert reply.output_text == "hi from the recorder"


async def test_chat_stream_tool_call(recorder: tuple[int, Path]) -> None:
    port, _ = recorder
    tool: Any = {"type": "function", "function": {"name": "get_x", "parameters": {}}}
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x") as sdk:
        stream = await sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], tools=[tool], stream=True
        )
        calls = [c.choices[0].delta.tool_calls async for c in stream if c.choices]
    names = [call[0].function.name for call in calls if call and call[0].function]
    assert names == ["get_x"]


async def test_messages_stream_and_redaction(recorder: tuple[int, Path]) -> None:
    port, log = recorder
    tool = {"name": "get_x", "input_schema": {"type": "object"}}
    hi = [{"role": "user", "content": "hi"}]
    sdk = anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{port}", api_key="sk-ant-x")
    async with sdk, sdk.messages.stream(model="m", max_tokens=9, messages=hi, tools=[tool]) as s:  # type: ignore[arg-type, list-item]
        message = await s.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "tool_use"]
    assert message.stop_reason == "tool_use"
    logged = log.read_text()
    assert "sk-ant-x" not in logged
    # x-api-key, or Authorization when the environment gives the SDK a token instead
    assert "<redacted>" in entries(log)[0]["headers"].values()


async def test_unknown_path_is_404_and_logged(recorder: tuple[int, Path]) -> None:
    port, log = recorder
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x") as sdk:
        models = await sdk.models.list()
        with pytest.raises(openai.NotFoundError):
            await sdk.embeddings.create(model="m", input="hi")
    assert [m.id for m in models.data] == ["some-model"]
    assert [e["status"] for e in entries(log)] == [200, 404]

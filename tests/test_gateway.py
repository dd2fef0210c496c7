"""The gateway end to end: official SDKs (and raw aiohttp) -> Gateway -> protocol fakes.

Every test starts a real Gateway on 127.0.0.1 over FakeEngines (tests/fakes) and talks to
it as a client would. Admission limits live in test_gateway_limits.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import struct
import time
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families

from modelport.gateway.ledger import usage_totals
from modelport.gateway.server import StartError
from tests.fakes import FakeEngine, Reply, fake_vector
from tests.gateway_harness import settled, until

HI = [{"role": "user", "content": "hi"}]
WEATHER_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


# -- raw HTTP helpers ----------------------------------------------------------------------


async def post(
    url: str,
    path: str,
    body: Any = None,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, CIMultiDict[str], bytes]:
    raw = data if data is not None else json.dumps(body).encode()
    send = {"Content-Type": "application/json", **(headers or {})}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, data=raw, headers=send) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


async def get(
    url: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url + path, headers=headers) as r:
        return r.status, CIMultiDict(r.headers), await r.read()


async def read_until_closed(resp: aiohttp.ClientResponse) -> bytes:
    """Whatever arrives until the body ends or the connection drops."""
    got = b""
    try:
        while chunk := await resp.content.readany():
            got += chunk
    except aiohttp.ClientPayloadError:
        pass
    return got


def sse_frames(body: bytes) -> list[tuple[str | None, str]]:
    """(event, data) for every SSE frame of a whole body."""
    frames: list[tuple[str | None, str]] = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if event is not None or data:
            frames.append((event, "\n".join(data)))
    return frames


def openai_error_frame(body: bytes) -> dict[str, Any]:
    """The body's last frame is an OpenAI error frame and no [DONE] follows it."""
    frames = sse_frames(body)
    assert frames, body
    assert all(data != "[DONE]" for _, data in frames), body
    last = json.loads(frames[-1][1])
    assert set(last) == {"error"}, last
    assert isinstance(last["error"]["message"], str) and last["error"]["message"]
    return last["error"]


def anthropic_error_frame(body: bytes) -> dict[str, Any]:
    """The body's last frame is `event: error` in Anthropic's shape; no message_stop."""
    frames = sse_frames(body)
    assert frames, body
    assert all(event != "message_stop" for event, _ in frames), body
    event, data = frames[-1]
    assert event == "error", body
    payload = json.loads(data)
    assert payload["type"] == "error", payload
    assert isinstance(payload["error"]["type"], str)
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    return payload["error"]


def backend(kind: str, fake: FakeEngine, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "url": fake.url, **kw}


def chat_requests(fake: FakeEngine) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith(("/chat/completions", "/messages"))]


# == 1. passthrough =========================================================================


async def test_openai_passthrough_non_stream(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    vllm.default_reply = Reply(text="Hello there.", usage=(11, 3))
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    oc = clients("openai", url)

    raw = await oc.chat.completions.with_raw_response.create(
        model="qwen", messages=HI, temperature=0.5, max_tokens=20
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == "Hello there."
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 3)
    assert reply.model == "qwen"
    assert raw.headers["x-request-id"]
    assert raw.headers["x-modelport-backend"] == f"vllm:{vllm.url}"
    given = await oc.chat.completions.with_raw_response.create(
        model="qwen", messages=HI, extra_headers={"x-request-id": "my-trace.42"}
    )
    assert given.headers["x-request-id"] == "my-trace.42"
    # The engine got exactly what the client sent.
    sent = chat_requests(vllm)[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {"model": "qwen", "messages": HI, "temperature": 0.5, "max_tokens": 20}


async def test_openai_passthrough_stream_with_usage(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    vllm.default_reply = Reply(text="Streaming along nicely.", usage=(9, 6), chunk_chars=3)
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    oc = clients("openai", url)

    raw = await oc.chat.completions.with_raw_response.create(
        model="qwen", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["x-request-id"]
    assert raw.headers["x-modelport-backend"] == f"vllm:{vllm.url}"
    text, finish, usage, n = "", None, None, 0
    async for chunk in raw.parse():
        n += 1
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == "Streaming along nicely."
    assert n > 5  # streamed, not one lump
    assert finish == "stop"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (9, 6)
    (sent,) = chat_requests(vllm)
    assert sent.json == {
        "model": "qwen",
        "messages": HI,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_openai_passthrough_tool_calls(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    calls = [("call_a1", "get_weather", {"city": "Paris"}), ("call_b2", "get_time", {"tz": "CET"})]
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    oc = clients("openai", url)

    vllm.replies.append(Reply(text="", tool_calls=calls))
    reply = await oc.chat.completions.create(model="qwen", messages=HI, tools=[WEATHER_OPENAI])
    got = reply.choices[0].message.tool_calls
    assert [(c.id, c.function.name) for c in got] == [
        ("call_a1", "get_weather"),
        ("call_b2", "get_time"),
    ]
    assert all(isinstance(c.function.arguments, str) for c in got)
    assert [json.loads(c.function.arguments) for c in got] == [{"city": "Paris"}, {"tz": "CET"}]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert chat_requests(vllm)[-1].json["tools"] == [WEATHER_OPENAI]

    vllm.replies.append(Reply(text="", tool_calls=calls))
    stream = await oc.chat.completions.create(
        model="qwen", messages=HI, tools=[WEATHER_OPENAI], stream=True
    )
    ids: dict[int, str] = {}
    names: dict[int, str] = {}
    args: dict[int, str] = {}
    finish = None
    async for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or ():
            if call.id:
                ids[call.index] = call.id
            if call.function and call.function.name:
                names[call.index] = call.function.name
            if call.function and call.function.arguments:
                args[call.index] = args.get(call.index, "") + call.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert ids == {0: "call_a1", 1: "call_b2"}
    assert names == {0: "get_weather", 1: "get_time"}
    assert {i: json.loads(a) for i, a in args.items()} == {0: {"city": "Paris"}, 1: {"tz": "CET"}}
    assert finish == "tool_calls"


async def test_anthropic_passthrough_create_and_stream(fake_engine, gateway, clients) -> None:
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="sk-ant-up")
    _gw, url = await gateway(
        backends=[backend("anthropic", claude, api_key_env="ANT_KEY")],
        env={"ANT_KEY": "sk-ant-up"},
    )
    ac = clients("anthropic", url)

    claude.replies.append(
        Reply(text="Bonjour.", thinking="Think.", signature="sig-1", usage=(12, 4))
    )
    raw = await ac.messages.with_raw_response.create(
        model="claude-x", max_tokens=64, messages=HI, system="Be brief."
    )
    msg = await raw.parse()
    assert raw.headers["x-request-id"]
    assert raw.headers["x-modelport-backend"] == f"anthropic:{claude.url}"
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert (msg.content[0].thinking, msg.content[0].signature) == ("Think.", "sig-1")
    assert msg.content[1].text == "Bonjour."
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (12, 4)
    (sent,) = chat_requests(claude)
    assert sent.path == "/v1/messages"
    assert sent.json == {
        "max_tokens": 64,
        "messages": HI,
        "model": "claude-x",
        "system": "Be brief.",
    }
    assert sent.headers["x-api-key"] == "sk-ant-up"  # the backend's key, not the client's

    claude.replies.append(Reply(text="A streamed answer.", usage=(8, 5), chunk_chars=2))
    async with ac.messages.stream(model="claude-x", max_tokens=64, messages=HI) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "A streamed answer."
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (8, 5)
    assert chat_requests(claude)[-1].json["stream"] is True


async def test_anthropic_passthrough_tools(fake_engine, gateway, clients) -> None:
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    _gw, url = await gateway(
        backends=[backend("anthropic", claude, api_key_env="ANT_KEY")], env={"ANT_KEY": "k"}
    )
    ac = clients("anthropic", url)
    call = ("toolu_01abc", "get_weather", {"city": "Oslo", "days": 2})

    claude.replies.append(Reply(text="", tool_calls=[call]))
    msg = await ac.messages.create(
        model="claude-x", max_tokens=64, messages=HI, tools=[WEATHER_ANTHROPIC]
    )
    assert msg.stop_reason == "tool_use"
    (use,) = [b for b in msg.content if b.type == "tool_use"]
    assert (use.id, use.name, use.input) == call
    assert chat_requests(claude)[-1].json["tools"] == [WEATHER_ANTHROPIC]

    claude.replies.append(Reply(text="", tool_calls=[call]))
    async with ac.messages.stream(
        model="claude-x", max_tokens=64, messages=HI, tools=[WEATHER_ANTHROPIC]
    ) as stream:
        final = await stream.get_final_message()
    (use,) = [b for b in final.content if b.type == "tool_use"]
    assert (use.id, use.name, use.input) == call
    assert final.stop_reason == "tool_use"


async def test_anthropic_passthrough_to_llamacpp(fake_engine, gateway, clients) -> None:
    llama = await fake_engine("llamacpp", models=["gemma.gguf"])
    llama.default_reply = Reply(text="From llama.", usage=(5, 2))
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    ac = clients("anthropic", url)

    raw = await ac.messages.with_raw_response.create(model="gemma.gguf", max_tokens=32, messages=HI)
    msg = await raw.parse()
    assert raw.headers["x-modelport-backend"] == f"llamacpp:{llama.url}"
    assert msg.content[0].text == "From llama."
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (5, 2)
    async with ac.messages.stream(model="gemma.gguf", max_tokens=32, messages=HI) as stream:
        text = "".join([t async for t in stream.text_stream])
    assert text == "From llama."
    sent = chat_requests(llama)
    assert [r.path for r in sent] == ["/v1/messages", "/v1/messages"]
    assert sent[0].json == {"max_tokens": 32, "messages": HI, "model": "gemma.gguf"}


async def test_model_rewritten_only_for_prefix_and_alias(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    toml = f"""
[[backends]]
kind = "vllm"
name = "gpu"
url = "{vllm.url}"

[aliases]
fast = ["qwen"]
"""
    _gw, url = await gateway(toml)
    oc = clients("openai", url)

    by_prefix = await oc.chat.completions.create(model="gpu/qwen", messages=HI, max_tokens=5)
    by_alias = await oc.chat.completions.create(model="fast", messages=HI, max_tokens=5)
    first, second = chat_requests(vllm)
    assert first.json == {"model": "qwen", "messages": HI, "max_tokens": 5}
    assert second.json == {"model": "qwen", "messages": HI, "max_tokens": 5}
    # The client reads back the name it asked for.
    assert (by_prefix.model, by_alias.model) == ("gpu/qwen", "fast")


# == 2. transcoding ==========================================================================


async def test_anthropic_client_to_openai_engine(fake_engine, gateway, clients) -> None:
    local = await fake_engine("localai", models=["tiny"])
    _gw, url = await gateway(backends=[backend("localai", local)])
    ac = clients("anthropic", url)
    call = ("call_x1", "get_weather", {"city": "Rome"})

    local.replies.append(
        Reply(text="It is sunny.", thinking="Let me check.", tool_calls=[call], usage=(21, 9))
    )
    raw = await ac.messages.with_raw_response.create(
        model="tiny", max_tokens=100, messages=HI, tools=[WEATHER_ANTHROPIC]
    )
    msg = await raw.parse()
    assert raw.headers["x-modelport-backend"] == f"localai:{local.url}"
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    assert msg.content[0].thinking == "Let me check."
    assert msg.content[1].text == "It is sunny."
    assert (msg.content[2].id, msg.content[2].name, msg.content[2].input) == call
    assert msg.stop_reason == "tool_use"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (21, 9)
    assert msg.model == "tiny"
    sent = chat_requests(local)[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "tiny"
    assert sent.json["max_tokens"] == 100
    assert sent.json["tools"][0]["function"]["name"] == "get_weather"
    assert sent.json["tools"][0]["function"]["parameters"] == WEATHER_ANTHROPIC["input_schema"]

    local.replies.append(
        Reply(
            text="It is sunny.",
            thinking="Let me check.",
            tool_calls=[call],
            usage=(21, 9),
            chunk_chars=3,
        )
    )
    async with ac.messages.stream(
        model="tiny", max_tokens=100, messages=HI, tools=[WEATHER_ANTHROPIC]
    ) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].thinking == "Let me check."
    assert final.content[1].text == "It is sunny."
    assert (final.content[2].id, final.content[2].name, final.content[2].input) == call
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (21, 9)


async def test_anthropic_client_to_cloud_openai_engine_length(
    fake_engine, gateway, clients
) -> None:
    router = await fake_engine("openrouter", models=["m-1"], api_key="sk-or-secret")
    _gw, url = await gateway(
        backends=[backend("openrouter", router, api_key_env="OR_KEY")],
        env={"OR_KEY": "sk-or-secret"},
    )
    ac = clients("anthropic", url)

    router.replies.append(Reply(text="cut sho", finish_reason="length", usage=(4, 3)))
    msg = await ac.messages.create(model="m-1", max_tokens=3, messages=HI)
    assert msg.stop_reason == "max_tokens"
    assert msg.content[0].text == "cut sho"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (4, 3)
    assert chat_requests(router)[-1].headers["Authorization"] == "Bearer sk-or-secret"

    router.replies.append(Reply(text="cut sho", finish_reason="length", usage=(4, 3)))
    async with ac.messages.stream(model="m-1", max_tokens=3, messages=HI) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert final.content[0].text == "cut sho"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 3)


async def test_openai_client_to_anthropic_engine(fake_engine, gateway, clients) -> None:
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    _gw, url = await gateway(
        backends=[backend("anthropic", claude, api_key_env="ANT_KEY")], env={"ANT_KEY": "k"}
    )
    oc = clients("openai", url)
    call = ("toolu_01xyz", "get_weather", {"city": "Lima"})

    claude.replies.append(
        Reply(
            text="Looking.",
            thinking="Need weather.",
            signature="sig-abc",
            tool_calls=[call],
            usage=(30, 12),
        )
    )
    raw = await oc.chat.completions.with_raw_response.create(
        model="claude-x", messages=HI, tools=[WEATHER_OPENAI], max_tokens=50
    )
    reply = raw.parse()
    assert raw.headers["x-modelport-backend"] == f"anthropic:{claude.url}"
    message = reply.choices[0].message
    assert message.content == "Looking."
    extra = message.model_extra or {}
    assert extra.get("reasoning_content") == "Need weather."
    assert extra.get("reasoning_signature") == "sig-abc"
    (tc,) = message.tool_calls
    assert (tc.id, tc.function.name, json.loads(tc.function.arguments)) == call
    assert isinstance(tc.function.arguments, str)
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (30, 12)
    sent = chat_requests(claude)[-1]
    assert sent.path == "/v1/messages"
    assert sent.json["max_tokens"] == 50
    assert sent.json["tools"] == [WEATHER_ANTHROPIC]

    claude.replies.append(
        Reply(
            text="Looking.",
            thinking="Need weather.",
            signature="sig-abc",
            tool_calls=[call],
            usage=(30, 12),
            chunk_chars=2,
        )
    )
    stream = await oc.chat.completions.create(
        model="claude-x",
        messages=HI,
        tools=[WEATHER_OPENAI],
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    text = thinking = signature = ""
    calls: dict[int, dict[str, str]] = {}
    finish = usage = None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        thinking += (delta.model_extra or {}).get("reasoning_content") or ""
        signature += (delta.model_extra or {}).get("reasoning_signature") or ""
        for c in delta.tool_calls or ():
            slot = calls.setdefault(c.index, {"id": "", "name": "", "args": ""})
            slot["id"] = c.id or slot["id"]
            slot["name"] = (c.function.name if c.function else None) or slot["name"]
            slot["args"] += (c.function.arguments if c.function else None) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert (text, thinking, signature) == ("Looking.", "Need weather.", "sig-abc")
    assert {i: (c["id"], c["name"], json.loads(c["args"])) for i, c in calls.items()} == {0: call}
    assert finish == "tool_calls"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (30, 12)


async def test_openai_client_to_anthropic_engine_max_tokens(fake_engine, gateway, clients) -> None:
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    _gw, url = await gateway(
        backends=[backend("anthropic", claude, api_key_env="ANT_KEY")], env={"ANT_KEY": "k"}
    )
    oc = clients("openai", url)
    claude.replies.append(Reply(text="trunc", finish_reason="length", usage=(3, 2)))
    reply = await oc.chat.completions.create(model="claude-x", messages=HI, max_tokens=2)
    assert reply.choices[0].finish_reason == "length"
    claude.replies.append(Reply(text="trunc", finish_reason="length", usage=(3, 2)))
    stream = await oc.chat.completions.create(
        model="claude-x", messages=HI, max_tokens=2, stream=True
    )
    finishes = [c.choices[0].finish_reason async for c in stream if c.choices]
    assert finishes[-1] == "length"


async def test_tool_results_travel_through_transcoding(fake_engine, gateway, clients) -> None:
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    local = await fake_engine("localai", models=["tiny"])
    _gw, url = await gateway(
        backends=[
            backend("anthropic", claude, api_key_env="ANT_KEY"),
            backend("localai", local),
        ],
        env={"ANT_KEY": "k"},
    )
    oc = clients("openai", url)
    ac = clients("anthropic", url)

    # OpenAI conversation with a tool round trip -> Anthropic engine.
    await oc.chat.completions.create(
        model="claude-x",
        max_tokens=40,
        tools=[WEATHER_OPENAI],
        messages=[
            {"role": "user", "content": "Weather in Lima?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Lima"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, cloudy"},
        ],
    )
    sent = chat_requests(claude)[-1].json
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    (use,) = [b for b in sent["messages"][1]["content"] if b["type"] == "tool_use"]
    assert (use["id"], use["name"], use["input"]) == ("toolu_1", "get_weather", {"city": "Lima"})
    (result,) = sent["messages"][2]["content"]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == "toolu_1"
    result_text = result["content"]
    if isinstance(result_text, list):
        result_text = "".join(b["text"] for b in result_text)
    assert result_text == "18C, cloudy"

    # Anthropic conversation with a tool round trip -> OpenAI engine.
    await ac.messages.create(
        model="tiny",
        max_tokens=40,
        tools=[WEATHER_ANTHROPIC],
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_9",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "-3C"}],
            },
        ],
    )
    sent = chat_requests(local)[-1].json
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["user", "assistant", "tool"]
    (tc,) = sent["messages"][1]["tool_calls"]
    assert (tc["id"], tc["function"]["name"]) == ("call_9", "get_weather")
    assert json.loads(tc["function"]["arguments"]) == {"city": "Oslo"}
    assert sent["messages"][2]["tool_call_id"] == "call_9"
    assert sent["messages"][2]["content"] in ("-3C", [{"type": "text", "text": "-3C"}])


# == 3. validation before forwarding ===========================================================

OPENAI_BAD = [
    (b"{not json", None),
    (json.dumps({"model": "qwen", "messages": "bad"}).encode(), "messages"),
    (json.dumps({"messages": HI}).encode(), "model"),
    (json.dumps({"model": "qwen", "messages": HI, "temperature": "hot"}).encode(), "temperature"),
    (json.dumps({"model": "qwen", "messages": HI, "max_tokens": "10"}).encode(), "max_tokens"),
    (json.dumps({"model": "qwen", "messages": HI, "stream": "yes"}).encode(), "stream"),
    (json.dumps({"model": "qwen", "messages": [{"role": "user"}]}).encode(), "messages[0]"),
    (json.dumps(["model", "qwen"]).encode(), None),
]
ANTHROPIC_BAD = [
    (b"{not json", None),
    (json.dumps({"model": "qwen", "max_tokens": 5, "messages": "bad"}).encode(), "messages"),
    (json.dumps({"max_tokens": 5, "messages": HI}).encode(), "model"),
    (json.dumps({"model": "qwen", "messages": HI}).encode(), "max_tokens"),
    (json.dumps({"model": "qwen", "max_tokens": "5", "messages": HI}).encode(), "max_tokens"),
    (
        json.dumps({"model": "qwen", "max_tokens": 5, "messages": HI, "temperature": "x"}).encode(),
        "temperature",
    ),
    (json.dumps({"model": "qwen", "max_tokens": 5, "messages": [{"role": 3}]}).encode(), "role"),
]


@pytest.mark.parametrize(("body", "field"), OPENAI_BAD)
async def test_openai_invalid_requests_are_refused_before_forwarding(
    fake_engine, gateway, body: bytes, field: str | None
) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    status, headers, raw = await post(url, "/v1/chat/completions", data=body)
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert headers["x-request-id"]
    if field is not None:
        assert error["param"] == field or error["param"].startswith(field), error
        assert field.split("[")[0] in error["message"]
    assert chat_requests(vllm) == []


@pytest.mark.parametrize(("body", "field"), ANTHROPIC_BAD)
async def test_anthropic_invalid_requests_are_refused_before_forwarding(
    fake_engine, gateway, body: bytes, field: str | None
) -> None:
    llama = await fake_engine("llamacpp", models=["qwen"])
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    status, _headers, raw = await post(url, "/v1/messages", data=body)
    assert status == 400, raw
    payload = json.loads(raw)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    if field is not None:
        assert field in payload["error"]["message"], payload
    assert chat_requests(llama) == []


async def test_invalid_request_through_the_sdks(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    with pytest.raises(openai.BadRequestError) as caught:
        await clients("openai", url).chat.completions.create(
            model="qwen",
            messages="bad",  # type: ignore[arg-type]
        )
    assert caught.value.status_code == 400
    assert caught.value.param == "messages"
    with pytest.raises(anthropic.BadRequestError) as err:
        await clients("anthropic", url).messages.create(
            model="qwen",
            max_tokens=5,
            messages="bad",  # type: ignore[arg-type]
        )
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert chat_requests(vllm) == []


async def test_body_over_the_cap_is_413_in_each_shape(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)], server={"max_body_mb": 0.01})
    big = [{"role": "user", "content": "x" * 20_000}]

    status, _, raw = await post(url, "/v1/chat/completions", {"model": "qwen", "messages": big})
    assert status == 413, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert "too large" in error["message"]

    status, _, raw = await post(
        url, "/v1/messages", {"model": "qwen", "max_tokens": 5, "messages": big}
    )
    assert status == 413, raw
    payload = json.loads(raw)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "request_too_large"
    assert chat_requests(vllm) == []
    # Under the cap still works.
    status, _, raw = await post(url, "/v1/chat/completions", {"model": "qwen", "messages": HI})
    assert status == 200, raw


async def test_unknown_model_is_404_with_a_suggestion(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen-coder"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])

    with pytest.raises(openai.NotFoundError) as caught:
        await clients("openai", url).chat.completions.create(model="qwen-codr", messages=HI)
    body = caught.value.body
    assert body["code"] == "model_not_found"
    assert "did you mean 'qwen-coder'" in body["message"]

    with pytest.raises(anthropic.NotFoundError) as err:
        await clients("anthropic", url).messages.create(
            model="qwen-codr", max_tokens=5, messages=HI
        )
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "not_found_error"
    assert "did you mean 'qwen-coder'" in err.value.body["error"]["message"]

    status, _, raw = await post(url, "/v1/embeddings", {"model": "qwen-codr", "input": "hello"})
    assert status == 404
    assert "did you mean 'qwen-coder'" in json.loads(raw)["error"]["message"]
    assert chat_requests(vllm) == []


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


@pytest.mark.parametrize("kind", ["localai", "llamacpp"])
async def test_images_to_a_text_only_model_are_400(fake_engine, gateway, kind: str) -> None:
    fake = await fake_engine(kind, models=["text-only"])
    _gw, url = await gateway(backends=[backend(kind, fake)])
    openai_body = {
        "model": "text-only",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    }
    status, _, raw = await post(url, "/v1/chat/completions", openai_body)
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert "image" in error["message"]

    anthropic_body = {
        "model": "text-only",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    }
    status, _, raw = await post(url, "/v1/messages", anthropic_body)
    assert status == 400, raw
    payload = json.loads(raw)
    assert payload["error"]["type"] == "invalid_request_error"
    assert "image" in payload["error"]["message"]
    assert chat_requests(fake) == []


# == 4. router ===================================================================================


async def test_prefix_picks_the_named_backend(fake_engine, gateway, clients) -> None:
    one = await fake_engine("vllm", models=["qwen"])
    two = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(
        backends=[backend("vllm", one, name="one"), backend("vllm", two, name="two")]
    )
    oc = clients("openai", url)
    raw = oc.chat.completions.with_raw_response
    first = await raw.create(model="two/qwen", messages=HI)
    assert first.headers["x-modelport-backend"] == f"vllm:{two.url}"
    second = await raw.create(model="one/qwen", messages=HI)
    assert second.headers["x-modelport-backend"] == f"vllm:{one.url}"
    assert [r.json["model"] for r in chat_requests(two)] == ["qwen"]
    assert [r.json["model"] for r in chat_requests(one)] == ["qwen"]


async def test_alias_falls_back_past_a_down_backend(
    fake_engine, gateway, clients, refused_url: str
) -> None:
    up = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(
        backends=[
            {"kind": "vllm", "url": refused_url, "name": "down"},
            backend("vllm", up, name="up"),
        ],
        aliases={"smart": ["down/qwen", "up/qwen"]},
    )
    raw = await clients("openai", url).chat.completions.with_raw_response.create(
        model="smart", messages=HI
    )
    assert raw.headers["x-modelport-backend"] == f"vllm:{up.url}"
    assert raw.parse().choices[0].message.content == "Hello from the fake."
    assert chat_requests(up)[-1].json["model"] == "qwen"


async def test_alias_falls_back_when_the_first_answers_503(fake_engine, gateway, clients) -> None:
    busy = await fake_engine("vllm", models=["big"])
    spare = await fake_engine("localai", models=["small"])
    busy.default_reply = Reply(status=503)
    _gw, url = await gateway(
        backends=[backend("vllm", busy, name="busy"), backend("localai", spare, name="spare")],
        aliases={"smart": ["big", "small"]},
    )
    oc = clients("openai", url)
    raw = await oc.chat.completions.with_raw_response.create(model="smart", messages=HI)
    assert raw.headers["x-modelport-backend"] == f"localai:{spare.url}"
    assert raw.parse().model == "smart"
    assert len(chat_requests(busy)) == 1
    assert chat_requests(spare)[-1].json["model"] == "small"

    # The same through a stream and through the Anthropic format.
    stream = await oc.chat.completions.create(model="smart", messages=HI, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the fake."
    msg = await clients("anthropic", url).messages.create(model="smart", max_tokens=10, messages=HI)
    assert msg.content[0].text == "Hello from the fake."
    assert len(chat_requests(busy)) == 3
    assert len(chat_requests(spare)) == 3


async def test_local_before_cloud_then_priority(fake_engine, gateway, clients) -> None:
    cloud = await fake_engine("openrouter", models=["m"], api_key="sk-or-1234567")
    low = await fake_engine("vllm", models=["m"])
    high = await fake_engine("localai", models=["m"])
    _gw, url = await gateway(
        backends=[
            backend("openrouter", cloud, api_key_env="OR_KEY", priority=100),
            backend("vllm", low, name="low", priority=1),
            backend("localai", high, name="high", priority=5),
        ],
        env={"OR_KEY": "sk-or-1234567"},
    )
    oc = clients("openai", url)
    raw = await oc.chat.completions.with_raw_response.create(model="m", messages=HI)
    assert raw.headers["x-modelport-backend"] == f"localai:{high.url}"
    assert (len(chat_requests(high)), len(chat_requests(low)), len(chat_requests(cloud))) == (
        1,
        0,
        0,
    )
    # The cloud is still reachable by name.
    raw = await oc.chat.completions.with_raw_response.create(model="openrouter/m", messages=HI)
    assert raw.headers["x-modelport-backend"] == "openrouter"
    assert len(chat_requests(cloud)) == 1


async def test_breaker_opens_after_three_failures_and_closes_after_a_success(
    fake_engine, gateway, clients
) -> None:
    flaky = await fake_engine("vllm", models=["m"])
    good = await fake_engine("localai", models=["m"])
    flaky.default_reply = Reply(status=503)
    gw, url = await gateway(
        backends=[
            backend("vllm", flaky, name="flaky", priority=9),
            backend("localai", good, name="good"),
        ]
    )
    oc = clients("openai", url)
    breaker = gw.router.by_name("flaky").breaker
    for n in range(1, 4):
        reply = await oc.chat.completions.create(model="m", messages=HI)
        assert reply.choices[0].message.content == "Hello from the fake."
        assert len(chat_requests(flaky)) == n
    assert breaker.state == "open"
    await oc.chat.completions.create(model="m", messages=HI)
    assert len(chat_requests(flaky)) == 3  # the open breaker kept it from flaky
    assert len(chat_requests(good)) == 4

    breaker.cooldown_s = 0.05
    await asyncio.sleep(0.1)
    flaky.default_reply = Reply(text="recovered")
    reply = await oc.chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "recovered"  # the one trial went through
    assert breaker.state == "closed"
    flaky.default_reply = Reply(status=503)
    await oc.chat.completions.create(model="m", messages=HI)
    assert breaker.state == "closed"  # one failure after a success does not reopen it
    assert len(chat_requests(flaky)) == 5


async def test_breaker_open_on_the_only_backend_is_an_error_without_a_request(
    fake_engine, gateway, clients
) -> None:
    flaky = await fake_engine("vllm", models=["m"])
    flaky.default_reply = Reply(status=503)
    _gw, url = await gateway(backends=[backend("vllm", flaky)])
    oc = clients("openai", url)
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as caught:
            await oc.chat.completions.create(model="m", messages=HI)
        assert caught.value.status_code == 503
    with pytest.raises(openai.APIStatusError) as caught:
        await oc.chat.completions.create(model="m", messages=HI)
    assert caught.value.status_code == 503
    assert caught.value.response.headers.get("Retry-After")
    assert len(chat_requests(flaky)) == 3
    with pytest.raises(anthropic.APIStatusError) as err:
        await clients("anthropic", url).messages.create(model="m", max_tokens=5, messages=HI)
    assert err.value.status_code == 529
    assert err.value.body["error"]["type"] == "overloaded_error"
    assert len(chat_requests(flaky)) == 3


@pytest.mark.parametrize("fault", ["drop", "fail"])
async def test_no_fallback_after_the_first_byte(fake_engine, gateway, fault: str) -> None:
    first = await fake_engine("vllm", models=["m"])
    second = await fake_engine("localai", models=["m"])
    first.default_reply = Reply(
        text="a long enough answer to stream",
        drop_after_chunks=2 if fault == "drop" else None,
        fail_after_chunks=2 if fault == "fail" else None,
    )
    _gw, url = await gateway(
        backends=[backend("vllm", first, priority=5), backend("localai", second)]
    )
    status, _, raw = await post(
        url, "/v1/chat/completions", {"model": "m", "messages": HI, "stream": True}
    )
    assert status == 200
    assert b"a lo" in raw  # the first backend's bytes reached the client
    openai_error_frame(raw)
    assert chat_requests(second) == []
    assert len(chat_requests(first)) == 1


# == 6. cancellation =============================================================================

SLOW = Reply(text="slow " * 40, chunk_chars=2, delay_s=0.05)  # about five seconds of stream
# (client format, engine kind): passthrough when the engine speaks the client's format.
PATHS = [
    pytest.param("openai", "vllm", id="openai-passthrough"),
    pytest.param("anthropic", "anthropic", id="anthropic-passthrough"),
    pytest.param("openai", "anthropic", id="openai-to-anthropic"),
    pytest.param("anthropic", "localai", id="anthropic-to-openai"),
]


async def one_backend(fake_engine, gateway, kind: str, **server: Any) -> tuple[Any, Any, str]:
    key = "sk-ant-upstream" if kind == "anthropic" else None
    fake = await fake_engine(kind, models=["m"], api_key=key)
    extra = {"api_key_env": "UP_KEY"} if key else {}
    gw, url = await gateway(
        backends=[backend(kind, fake, **extra)], server=server, env={"UP_KEY": key or ""}
    )
    return fake, gw, url


def chat_path(fmt: str) -> str:
    return "/v1/chat/completions" if fmt == "openai" else "/v1/messages"


def chat_body(fmt: str, *, stream: bool, model: str = "m") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": HI, "stream": stream}
    if fmt == "anthropic":
        body["max_tokens"] = 100
    return body


@pytest.mark.parametrize(("fmt", "kind"), PATHS)
async def test_client_leaving_mid_stream_cancels_upstream(
    fake_engine, gateway, fmt: str, kind: str
) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind)
    fake.default_reply = SLOW
    session = aiohttp.ClientSession()
    try:
        resp = await session.post(url + chat_path(fmt), json=chat_body(fmt, stream=True))
        assert resp.status == 200
        assert await resp.content.readany()
        resp.close()  # drop the connection mid-stream
    finally:
        await session.close()
    started = time.monotonic()
    assert await fake.wait_disconnects(1, within=1.0) == 1
    assert time.monotonic() - started < 1.0
    assert await settled(gw) == [(0, 0)]


@pytest.mark.parametrize(("fmt", "kind"), PATHS)
async def test_client_leaving_before_the_first_byte_cancels_upstream(
    fake_engine, gateway, fmt: str, kind: str
) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind)
    fake.default_reply = Reply(hang=True)
    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(
            session.post(url + chat_path(fmt), json=chat_body(fmt, stream=True))
        )
        assert await until(lambda: bool(chat_requests(fake)))
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    assert await fake.wait_disconnects(1, within=1.0) == 1
    assert await settled(gw) == [(0, 0)]


@pytest.mark.parametrize(("fmt", "kind"), [PATHS[0], PATHS[2]])
async def test_stream_without_include_usage_gets_no_usage_chunk(
    fake_engine, gateway, clients, fmt: str, kind: str
) -> None:
    """OpenAI sends the usage chunk (empty `choices`) only to a client that asked for it;
    clients that read `chunk.choices[0]` break on one they did not ask for."""
    _fake, gw, url = await one_backend(fake_engine, gateway, kind)
    status, _, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=True))
    assert status == 200
    chunks = [json.loads(d) for _, d in sse_frames(raw) if d != "[DONE]"]
    assert chunks and all(c["choices"] for c in chunks), raw
    assert all(c.get("usage") is None for c in chunks), raw
    assert sse_frames(raw)[-1] == (None, "[DONE]")
    # The gateway still meters the request.
    _, _, text = await get(url, "/metrics")
    tokens = sample(
        scrape(text.decode()),
        "modelport_tokens_total",
        model="m",
        backend=gw.router.upstreams[0].backend.id,
        direction="out",
    )
    assert tokens == 5


# == 7. deadlines ================================================================================


@pytest.mark.parametrize(("fmt", "kind"), PATHS)
async def test_deadline_ends_a_stream_with_an_error_event(
    fake_engine, gateway, fmt: str, kind: str
) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind, request_timeout_s=0.5)
    fake.default_reply = Reply(text="tick " * 10, chunk_chars=2, delay_s=0.1)
    started = time.monotonic()
    status, _, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=True))
    assert time.monotonic() - started < 1.5
    assert status == 200
    if fmt == "openai":
        error = openai_error_frame(raw)
        assert error["code"] == "timeout"
    else:
        error = anthropic_error_frame(raw)
        assert error["type"] == "timeout_error"
    assert await settled(gw) == [(0, 0)]


@pytest.mark.parametrize(("fmt", "kind"), PATHS)
async def test_deadline_on_a_whole_answer_is_504(fake_engine, gateway, fmt: str, kind: str) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind, request_timeout_s=0.5)
    fake.default_reply = Reply(text="tick " * 10, chunk_chars=2, delay_s=0.1)
    started = time.monotonic()
    status, headers, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=False))
    assert time.monotonic() - started < 1.5
    assert status == 504, raw
    assert headers["x-request-id"]
    if fmt == "openai":
        assert json.loads(raw)["error"]["code"] == "timeout"
    else:
        assert json.loads(raw)["error"]["type"] == "timeout_error"
    assert await fake.wait_disconnects(1, within=1.0) == 1  # the engine was told to stop
    assert await settled(gw) == [(0, 0)]


# == 8. failures mid-stream ======================================================================


@pytest.mark.parametrize("fault", ["fail", "drop"])
@pytest.mark.parametrize(
    ("fmt", "kind"),
    [
        *PATHS,
        pytest.param("openai", "llamacpp", id="openai-passthrough-llamacpp"),
        pytest.param("anthropic", "llamacpp", id="anthropic-passthrough-llamacpp"),
    ],
)
async def test_failure_mid_stream_ends_with_an_error_event(
    fake_engine, gateway, clients, fmt: str, kind: str, fault: str
) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind)
    fake.default_reply = Reply(
        text="partial answer here",
        chunk_chars=3,
        fail_after_chunks=2 if fault == "fail" else None,
        drop_after_chunks=2 if fault == "drop" else None,
    )
    status, _, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=True))
    assert status == 200
    assert b"par" in raw
    if fmt == "openai":
        openai_error_frame(raw)
        stream = await clients("openai", url).chat.completions.create(
            model="m", messages=HI, stream=True
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
    else:
        anthropic_error_frame(raw)
        with pytest.raises(anthropic.APIError):
            async with clients("anthropic", url).messages.stream(
                model="m", max_tokens=100, messages=HI
            ) as stream:
                await stream.get_final_message()
    assert await settled(gw) == [(0, 0)]


# == 9. keys =====================================================================================

GW_KEY = "sk-gw-0123456789abcdef"


async def test_keys_are_required_and_never_leak(
    fake_engine, gateway, clients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vllm = await fake_engine("vllm", models=["m"])
    gw, url = await gateway(backends=[backend("vllm", vllm)], env={"MODELPORT_API_KEY": GW_KEY})
    bodies: list[bytes] = []

    status, _, raw = await post(url, "/v1/chat/completions", chat_body("openai", stream=False))
    bodies.append(raw)
    assert status == 401
    assert json.loads(raw)["error"]["type"] == "authentication_error"
    status, _, raw = await post(url, "/v1/messages", chat_body("anthropic", stream=False))
    bodies.append(raw)
    assert status == 401
    assert json.loads(raw) == {
        "type": "error",
        "error": {"type": "authentication_error", "message": json.loads(raw)["error"]["message"]},
    }
    for headers in (
        {"Authorization": "Bearer sk-wrong-0123456789"},
        {"x-api-key": "sk-wrong-0123456789"},
        {"Authorization": f"Bearer {GW_KEY}x"},
    ):
        status, _, raw = await post(
            url, "/v1/chat/completions", chat_body("openai", stream=False), headers=headers
        )
        bodies.append(raw)
        assert status == 401
        assert b"sk-wrong" not in raw
    status, _, raw = await post(
        url, "/v1/models", {}, headers={"Authorization": f"Bearer {GW_KEY}"}
    )  # POST on a GET route: still an error without the key in it
    bodies.append(raw)

    for path in ("/health", "/ready"):
        status, _, raw = await get(url, path)
        assert status == 200, path
    status, _, raw = await get(url, "/metrics")
    assert status == 401

    # Bearer (the OpenAI SDK) and x-api-key (the Anthropic SDK) both work.
    reply = await clients("openai", url, key=GW_KEY).chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake."
    msg = await clients("anthropic", url, key=GW_KEY).messages.create(
        model="m", max_tokens=5, messages=HI
    )
    assert msg.content[0].text == "Hello from the fake."
    status, _, raw = await post(
        url, "/v1/chat/completions", chat_body("openai", stream=True), headers={"x-api-key": GW_KEY}
    )
    assert status == 200 and raw.rstrip().endswith(b"data: [DONE]")
    with pytest.raises(openai.AuthenticationError):
        await clients("openai", url, key="nope").chat.completions.create(model="m", messages=HI)
    with pytest.raises(anthropic.AuthenticationError):
        await clients("anthropic", url, key="nope").messages.create(
            model="m", max_tokens=5, messages=HI
        )
    # The engine never saw the gateway's key.
    assert all(GW_KEY not in json.dumps(dict(r.headers)) for r in vllm.requests)
    assert len(chat_requests(vllm)) == 3

    await gw.stop(grace_s=0)
    for raw in bodies:
        assert GW_KEY.encode() not in raw
    assert GW_KEY not in caplog.text
    assert all(GW_KEY not in str(r.args) for r in caplog.records)


@pytest.mark.parametrize("up_key", ["sk-or-v1-0123456789abcdef", "hunter2-upstream-secret"])
async def test_upstream_keys_never_reach_clients_or_logs(
    fake_engine, gateway, caplog: pytest.LogCaptureFixture, up_key: str
) -> None:
    """Engines echo keys in their errors ("Incorrect API key provided: ..."); the gateway
    knows its upstream keys and must keep them out of every answer, whatever their shape."""
    caplog.set_level(logging.DEBUG)
    router = await fake_engine("openrouter", models=["m"], api_key=up_key)
    claude = await fake_engine("anthropic", models=["c"], api_key=up_key)
    gw, url = await gateway(
        backends=[
            backend("openrouter", router, api_key_env="UP"),
            backend("anthropic", claude, api_key_env="UP"),
        ],
        env={"UP": up_key},
    )
    leaks = []
    for fake, model in ((router, "m"), (claude, "c")):
        for status in (400, 401, 500):
            for fmt in ("openai", "anthropic"):
                fake.replies.append(
                    Reply(status=status, error_message=f"Incorrect API key provided: {up_key}")
                )
                got, _, raw = await post(
                    url, chat_path(fmt), chat_body(fmt, stream=False, model=model)
                )
                assert got >= 400
                if up_key.encode() in raw:
                    leaks.append((fake.kind, status, fmt))
    await gw.stop(grace_s=0)
    assert (leaks, up_key in caplog.text) == ([], False)


async def test_non_loopback_host_needs_a_key(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    with pytest.raises(StartError, match="MODELPORT_API_KEY"):
        await gateway(backends=[backend("vllm", vllm)], server={"host": "0.0.0.0"}, env={})
    _gw, url = await gateway(
        backends=[backend("vllm", vllm)],
        server={"host": "0.0.0.0"},
        env={"MODELPORT_API_KEY": GW_KEY},
    )
    reply = await clients("openai", url, key=GW_KEY).chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake."


# == 10. observability ===========================================================================


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_access_log_and_ledger(
    fake_engine, gateway, clients, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.access")
    vllm = await fake_engine("vllm", models=["qwen"])
    vllm.default_reply = Reply(text="the secret answer", usage=(7, 5))
    gw, url = await gateway(backends=[backend("vllm", vllm)])
    b = f"vllm:{vllm.url}"
    oc = clients("openai", url)
    ac = clients("anthropic", url)
    prompt = [{"role": "user", "content": "the secret prompt"}]

    ids = []
    raw = await oc.chat.completions.with_raw_response.create(model="qwen", messages=prompt)
    ids.append(raw.headers["x-request-id"])
    raw = await oc.chat.completions.with_raw_response.create(
        model="qwen", messages=prompt, stream=True
    )
    ids.append(raw.headers["x-request-id"])
    _ = [c async for c in raw.parse()]
    raw = await ac.messages.with_raw_response.create(model="qwen", max_tokens=9, messages=prompt)
    ids.append(raw.headers["x-request-id"])
    async with ac.messages.stream(model="qwen", max_tokens=9, messages=prompt) as stream:
        await stream.get_final_message()
    with pytest.raises(openai.NotFoundError):
        await oc.chat.completions.create(model="nope", messages=prompt)

    status, headers, text = await get(url, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    s = scrape(text.decode())
    req = "modelport_requests_total"
    assert sample(s, req, model="qwen", backend=b, status="200", format="openai") == 2
    assert sample(s, req, model="qwen", backend=b, status="200", format="anthropic") == 2
    assert sample(s, req, model="", backend="", status="404", format="openai") == 1
    assert sample(s, "modelport_tokens_total", model="qwen", backend=b, direction="in") == 28
    assert sample(s, "modelport_tokens_total", model="qwen", backend=b, direction="out") == 20
    ttft = "modelport_time_to_first_token_seconds_count"
    assert sample(s, ttft, model="qwen", backend=b) == 4
    assert sample(s, "modelport_backend_ready", backend=b) == 1
    assert sample(s, "modelport_in_flight", backend=b) == 0

    lines = [r for r in caplog.records if r.name == "modelport.access"]
    assert len(lines) == 5
    fields = [json.loads(r.getMessage()) for r in lines]
    assert [f["request_id"] for f in fields[:3]] == [ids[0], ids[1], ids[2]]
    assert [(f["format"], f["stream"], f["status"]) for f in fields] == [
        ("openai", False, 200),
        ("openai", True, 200),
        ("anthropic", False, 200),
        ("anthropic", True, 200),
        ("openai", False, 404),
    ]
    assert [(f["tokens_in"], f["tokens_out"]) for f in fields[:4]] == [(7, 5)] * 4
    assert all(f["passthrough"] for f in fields[:4])
    for record in lines:
        assert "secret" not in record.getMessage()

    await gw.stop(grace_s=0)
    (row,) = usage_totals(tmp_path / "usage.sqlite3", by="model")[:1]
    assert (row.group, row.requests, row.input_tokens, row.output_tokens) == ("qwen", 4, 28, 20)
    by_backend = {r.group: r for r in usage_totals(tmp_path / "usage.sqlite3", by="backend")}
    assert by_backend[b].requests == 4
    assert by_backend[""].errors == 1


async def test_rejected_requests_are_logged_and_counted(
    fake_engine, gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.access")
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    status, headers, _ = await post(url, "/v1/chat/completions", {"model": "qwen", "messages": 1})
    assert status == 400
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "modelport.access"]
    assert [(f["request_id"], f["status"]) for f in lines] == [(headers["x-request-id"], 400)]
    _, _, text = await get(url, "/metrics")
    s = scrape(text.decode())
    assert (
        sample(s, "modelport_requests_total", model="", backend="", status="400", format="openai")
        == 1
    )


async def test_models_listing_in_both_shapes(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"], context_window=8192)
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    _gw, url = await gateway(
        backends=[
            backend("vllm", vllm, name="gpu"),
            backend("anthropic", claude, name="claude", api_key_env="K"),
        ],
        aliases={"fast": ["qwen"]},
        env={"K": "k"},
    )
    listing = await clients("openai", url).models.list()
    rows = {m.id: m for m in listing.data}
    assert set(rows) == {"qwen", "claude-x", "fast"}
    qwen = rows["qwen"].model_dump()
    assert (qwen["owned_by"], qwen["context_window"], qwen["backend"]) == (
        "gpu",
        8192,
        f"vllm:{vllm.url}",
    )
    assert qwen["capabilities"]["tools"] is True
    assert rows["claude-x"].owned_by == "claude"
    assert rows["fast"].model_dump()["targets"] == ["qwen"]

    page = await clients("anthropic", url).models.list()
    ids = [m.id for m in page.data]
    assert sorted(ids) == ["claude-x", "qwen"]
    by_id = {m.id: m.model_dump() for m in page.data}
    assert by_id["qwen"]["type"] == "model"
    assert by_id["qwen"]["max_input_tokens"] == 8192


async def test_health_ready_and_openapi(fake_engine, gateway) -> None:
    llama = await fake_engine("llamacpp", models=["gemma.gguf"])
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    status, _, raw = await get(url, "/health")
    assert status == 200
    status, _, raw = await get(url, "/ready")
    assert status == 200
    ready = json.loads(raw)
    assert ready["status"] == "ready"
    assert ready["backends"][0]["ready"] is True
    status, headers, raw = await get(url, "/openapi.json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(raw)
    assert doc["openapi"].startswith("3.")
    for path in (
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/embeddings",
        "/v1/models",
        "/health",
        "/ready",
        "/metrics",
    ):
        assert path in doc["paths"], path


async def test_ready_is_503_while_every_backend_loads(fake_engine, gateway) -> None:
    llama = await fake_engine("llamacpp", models=["gemma.gguf"], loading=True)
    gw, url = await gateway(backends=[backend("llamacpp", llama)])
    status, _, raw = await get(url, "/health")
    assert status == 200
    status, _, raw = await get(url, "/ready")
    assert status == 503
    body = json.loads(raw)
    assert body["status"] == "not ready"
    assert body["backends"][0]["ready"] is False
    # Once it has loaded, a refresh makes it ready.
    llama.loading = False
    await gw.router.refresh()
    status, _, raw = await get(url, "/ready")
    assert status == 200


# == 11. graceful shutdown =======================================================================


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_stop_ends_a_slow_stream_with_an_error(fake_engine, gateway, fmt: str) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.default_reply = SLOW
    gw, url = await gateway(backends=[backend("vllm", vllm)])
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + chat_path(fmt), json=chat_body(fmt, stream=True)) as resp,
    ):
        assert resp.status == 200
        first = await resp.content.readany()
        reader = asyncio.create_task(read_until_closed(resp))  # reads as the bytes arrive
        started = time.monotonic()
        await gw.stop(grace_s=0.3)
        took = time.monotonic() - started
        rest = await asyncio.wait_for(reader, 2.0)
    assert 0.25 <= took < 2.0
    body = first + rest
    assert len(sse_frames(rest)) >= 4  # the stream went on during the grace
    if fmt == "openai":
        error = openai_error_frame(body)
        assert error["code"] == "service_unavailable"
    else:
        error = anthropic_error_frame(body)
        assert error["type"] == "overloaded_error"
    assert await vllm.wait_disconnects(1, within=1.0) == 1


async def test_stop_lets_a_stream_finish_within_the_grace(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.default_reply = Reply(text="quick " * 4, chunk_chars=4, delay_s=0.05)  # ~0.3 s
    gw, url = await gateway(backends=[backend("vllm", vllm)])
    stream = await clients("openai", url).chat.completions.create(
        model="m", messages=HI, stream=True
    )
    chunks = aiter(stream)
    text = (await anext(chunks)).choices[0].delta.content or ""
    started = time.monotonic()
    stopping = asyncio.create_task(gw.stop(grace_s=3.0))
    text += "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    await stopping
    assert text == "quick " * 4
    assert time.monotonic() - started < 1.5  # stop returns once the stream is done
    # No new requests once stopped.
    with pytest.raises(openai.APIConnectionError):
        await clients("openai", url).chat.completions.create(model="m", messages=HI)


# == 12. count_tokens and embeddings ============================================================


async def test_count_tokens(fake_engine, gateway, clients) -> None:
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    llama = await fake_engine("llamacpp", models=["gemma.gguf"])
    _gw, url = await gateway(
        backends=[
            backend("anthropic", claude, api_key_env="K"),
            backend("llamacpp", llama),
        ],
        env={"K": "k"},
    )
    ac = clients("anthropic", url)
    messages = [{"role": "user", "content": "x" * 40}]
    counted = await ac.messages.count_tokens(model="claude-x", messages=messages, system="abcdefgh")
    assert counted.input_tokens == 13  # the fake's estimate: 48 characters / 4 + 1
    (sent,) = claude.requests_to("/v1/messages/count_tokens")
    assert sent.json["model"] == "claude-x"
    assert "max_tokens" not in sent.json

    # llama-server answers /v1/messages/count_tokens too.
    counted = await ac.messages.count_tokens(model="gemma.gguf", messages=messages)
    assert counted.input_tokens == 11
    assert len(llama.requests_to("/v1/messages/count_tokens")) == 1

    status, _, raw = await post(url, "/v1/messages/count_tokens", {"model": "x", "messages": 1})
    assert status == 400
    assert json.loads(raw)["error"]["type"] == "invalid_request_error"


async def test_count_tokens_skips_backends_that_cannot_count(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["gemma"])
    llama = await fake_engine("llamacpp", models=["gemma"])
    _gw, url = await gateway(
        backends=[backend("vllm", vllm, priority=5), backend("llamacpp", llama)],
        aliases={"only-vllm": ["vllm/gemma"]},
    )
    ac = clients("anthropic", url)
    messages = [{"role": "user", "content": "x" * 40}]
    # vLLM is tried first and cannot count; llama-server serves the same model and can.
    raw = await ac.messages.with_raw_response.count_tokens(model="gemma", messages=messages)
    assert raw.headers["x-modelport-backend"] == f"llamacpp:{llama.url}"
    assert (await raw.parse()).input_tokens == 11
    # With no backend that can count, a clear 400 in Anthropic's shape.
    with pytest.raises(anthropic.BadRequestError) as err:
        await ac.messages.count_tokens(model="only-vllm", messages=messages)
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert "count tokens" in err.value.body["error"]["message"]
    assert vllm.requests_to("/v1/messages/count_tokens") == []


async def test_count_tokens_is_logged_and_counted(
    fake_engine, gateway, clients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.access")
    llama = await fake_engine("llamacpp", models=["gemma"])
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    await clients("anthropic", url).messages.count_tokens(model="gemma", messages=HI)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "modelport.access"]
    assert [(f["endpoint"], f["status"], f["format"]) for f in lines] == [
        ("count_tokens", 200, "anthropic")
    ]


async def test_embeddings_floats_and_base64(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["embed-1"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    oc = clients("openai", url)
    texts = ["hello world", "bye"]

    raw = await oc.embeddings.with_raw_response.create(
        model="embed-1", input=texts, encoding_format="float"
    )
    result = raw.parse()
    assert raw.headers["x-modelport-backend"] == f"vllm:{vllm.url}"
    assert [d.embedding for d in result.data] == [fake_vector(t) for t in texts]
    assert [d.index for d in result.data] == [0, 1]
    assert result.model == "embed-1"
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)

    result = await oc.embeddings.create(model="embed-1", input="hello world")  # SDK: base64
    (vector,) = [d.embedding for d in result.data]
    assert vector == pytest.approx(fake_vector("hello world"), abs=1e-6)

    status, _, raw = await post(
        url, "/v1/embeddings", {"model": "embed-1", "input": "bye", "encoding_format": "base64"}
    )
    assert status == 200
    packed = base64.b64decode(json.loads(raw)["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == pytest.approx(fake_vector("bye"), abs=1e-6)

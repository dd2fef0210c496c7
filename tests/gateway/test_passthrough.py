"""The gateway passes a request through untouched when the engine speaks the client's format."""

from __future__ import annotations

import json

from tests.fakes import Reply
from tests.gateway.helpers import HI, WEATHER_ANTHROPIC, WEATHER_OPENAI, backend, chat_requests

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

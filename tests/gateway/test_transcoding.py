"""The gateway transcodes between the OpenAI and Anthropic formats, both ways."""

from __future__ import annotations

import json

from tests.fakes import Reply
from tests.gateway.helpers import HI, WEATHER_ANTHROPIC, WEATHER_OPENAI, backend, chat_requests

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

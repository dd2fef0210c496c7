"""/api/chat through the gateway, driven by the `ollama` library: passthrough to an Ollama
engine, transcoding to an OpenAI-compatible one (issue 10, point 1)."""

from __future__ import annotations

import json
from typing import Any

import ollama
import pytest

from tests.fakes import Reply
from tests.fakes.turns import tool_round_trip
from tests.gateway.helpers import post
from tests.gateway.ollama_helpers import (
    ENGINES,
    MODEL,
    PNG,
    VISION,
    WEATHER,
    Served,
    engine_body,
    served_fixture,  # noqa: F401  (the `served` fixture)
)

HI = [{"role": "user", "content": "say hi"}]


def assert_done_line(last: Any, usage: tuple[int, int]) -> None:
    """Ollama's last object: done, its reason, the counts, durations in integer ns."""
    assert last.done is True
    assert last.done_reason == "stop"
    assert (last.prompt_eval_count, last.eval_count) == usage
    for field in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(getattr(last, field), int), field
    assert last.created_at and last.created_at.endswith("Z")


@pytest.mark.parametrize("kind", ENGINES)
async def test_chat_whole(served: Served, kind: str) -> None:
    fake, client = await served(kind)
    fake.default_reply = Reply(text="Hello there.", usage=(7, 5))
    answer = await client.chat(model=MODEL, messages=HI)
    assert answer.message.role == "assistant"
    assert answer.message.content == "Hello there."
    assert answer.model == MODEL
    assert_done_line(answer, (7, 5))
    path = "/api/chat" if kind == "ollama" else "/v1/chat/completions"
    assert fake.requests_to(path), [r.path for r in fake.requests]


@pytest.mark.parametrize("kind", ENGINES)
async def test_chat_stream(served: Served, kind: str) -> None:
    fake, client = await served(kind)
    fake.default_reply = Reply(text="Hello there, streamed.", usage=(9, 6), chunk_chars=3)
    parts = [part async for part in await client.chat(model=MODEL, messages=HI, stream=True)]
    assert len(parts) > 2
    assert "".join(p.message.content or "" for p in parts) == "Hello there, streamed."
    assert all(not p.done for p in parts[:-1])
    assert_done_line(parts[-1], (9, 6))


async def test_stream_is_ndjson_and_stream_defaults_to_true(served: Served) -> None:
    fake, client = await served("llamacpp")
    url = str(client._client.base_url).rstrip("/")
    status, headers, body = await post(url, "/api/chat", {"model": MODEL, "messages": HI})
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines[-1]["done"] is True and all(not line["done"] for line in lines[:-1])
    assert fake.last.json["stream"] is True


@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(served: Served, kind: str, stream: bool) -> None:
    """Two turns as ollama-python plays them: the call comes whole with object arguments,
    the client echoes the assistant message (its id dropped) and answers with `tool_name`."""
    fake, client = await served(kind)
    fake.reply_for = tool_round_trip("get_weather", {"city": "Paris"}, text="Sunny, 21C.")
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = await _chat(client, messages, stream, tools=[WEATHER])
    calls = first.message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == {"city": "Paris"}
    messages.append(first.message)
    messages.append({"role": "tool", "content": "sunny, 21C", "tool_name": "get_weather"})
    second = await _chat(client, messages, stream, tools=[WEATHER])
    assert second.message.content == "Sunny, 21C."
    sent = engine_body(fake)["messages"]
    if kind == "llamacpp":  # the result paired to the call by name: the same id both sides
        call_id = sent[1]["tool_calls"][0]["id"]
        assert call_id and sent[2] == {
            "role": "tool",
            "tool_call_id": call_id,
            "content": "sunny, 21C",
        }
    else:
        assert sent[2]["tool_name"] == "get_weather"


async def _chat(client: ollama.AsyncClient, messages: list[Any], stream: bool, **kw: Any) -> Any:
    """One turn; a stream gathered into one message as a client would."""
    if not stream:
        return await client.chat(model=MODEL, messages=messages, **kw)
    parts = [p async for p in await client.chat(model=MODEL, messages=messages, stream=True, **kw)]
    calls = [c for p in parts for c in p.message.tool_calls or ()]
    last = parts[-1]
    last.message.content = "".join(p.message.content or "" for p in parts)
    last.message.tool_calls = calls or None
    return last


@pytest.mark.parametrize("kind", ENGINES)
async def test_think(served: Served, kind: str) -> None:
    fake, client = await served(kind)
    fake.default_reply = Reply(text="Hi.", thinking="The user greets me.")
    answer = await client.chat(model=MODEL, messages=HI, think=True)
    assert answer.message.thinking == "The user greets me."
    assert answer.message.content == "Hi."
    parts = [p async for p in await client.chat(model=MODEL, messages=HI, think="low", stream=True)]
    assert "".join(p.message.thinking or "" for p in parts) == "The user greets me."
    body = engine_body(fake)
    if kind == "ollama":
        assert body["think"] == "low"
    else:
        assert body["reasoning_effort"] == "low"
        assert body["chat_template_kwargs"]["enable_thinking"] is True


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.mark.parametrize("kind", ENGINES)
async def test_format_json_and_schema(served: Served, kind: str) -> None:
    fake, client = await served(kind)
    fake.default_reply = Reply(text='{"answer": "hi"}')
    answer = await client.chat(model=MODEL, messages=HI, format="json")
    assert json.loads(answer.message.content or "") == {"answer": "hi"}
    sent = engine_body(fake)
    if kind == "ollama":
        assert sent["format"] == "json"
    else:
        assert sent["response_format"] == {"type": "json_object"}
    await client.chat(model=MODEL, messages=HI, format=SCHEMA, options={"temperature": 0})
    sent = engine_body(fake)
    if kind == "ollama":
        assert sent["format"] == SCHEMA
    else:
        assert sent["response_format"]["type"] == "json_schema"
        assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
        assert sent["temperature"] == 0


@pytest.mark.parametrize("kind", ENGINES)
async def test_images(served: Served, kind: str) -> None:
    fake, client = await served(kind, models=[VISION])
    messages = [{"role": "user", "content": "what is it", "images": [PNG]}]
    answer = await client.chat(model=VISION, messages=messages)
    assert answer.message.content
    sent = engine_body(fake)["messages"][0]
    if kind == "ollama":
        assert sent["images"] == [PNG]
    else:
        image = next(p for p in sent["content"] if p["type"] == "image_url")
        assert image["image_url"]["url"] == f"data:image/png;base64,{PNG}"


@pytest.mark.parametrize("kind", ENGINES)
async def test_options(served: Served, kind: str) -> None:
    fake, client = await served(kind)
    options = {"temperature": 0.2, "top_p": 0.9, "num_predict": 32, "stop": ["\n\n"], "seed": 7}
    await client.chat(model=MODEL, messages=HI, options=options, keep_alive="10m")
    sent = engine_body(fake)
    if kind == "ollama":  # the client's own body
        assert sent["options"] == options and sent["keep_alive"] == "10m"
    else:
        assert (sent["temperature"], sent["top_p"]) == (0.2, 0.9)
        assert (sent["max_tokens"], sent["stop"]) == (32, ["\n\n"])


@pytest.mark.parametrize("kind", ENGINES)
async def test_unknown_model_is_ollamas_404(served: Served, kind: str) -> None:
    _fake, client = await served(kind)
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat(model="nope", messages=HI)
    assert caught.value.status_code == 404
    assert caught.value.error.startswith("model 'nope' not found")


@pytest.mark.parametrize(
    ("body", "wording"),
    [
        (b"{nope", "request body is not valid JSON"),
        (b'{"model": "m"}', "messages: field required"),
        (b'{"model": "m", "messages": [{"role": "user"}]}', "messages[0].content"),
        (b'{"model": "m", "messages": [], "think": "hard"}', "messages: must not be empty"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "think": "hard"}',
            "think: 'hard' is not supported",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "format": 1}',
            "format: expected",
        ),
    ],
)
async def test_a_bad_body_is_400_in_ollamas_shape(
    served: Served, body: bytes, wording: str
) -> None:
    fake, client = await served("llamacpp")
    url = str(client._client.base_url).rstrip("/")
    status, _headers, raw = await post(url, "/api/chat", data=body)
    assert status == 400
    error = json.loads(raw)
    assert list(error) == ["error"] and wording in error["error"]
    assert not fake.requests_to("/v1/chat/completions")


@pytest.mark.parametrize("kind", ENGINES)
async def test_an_error_mid_stream_is_an_error_line(served: Served, kind: str) -> None:
    fake, client = await served(kind)
    fake.default_reply = Reply(text="one two three four five", chunk_chars=2, fail_after_chunks=2)
    parts: list[Any] = []
    with pytest.raises(ollama.ResponseError) as caught:
        async for part in await client.chat(model=MODEL, messages=HI, stream=True):
            parts.append(part)
    assert parts and not parts[-1].done  # the stream had started: 200, then an error line
    assert caught.value.status_code == -1  # the library's mark for an `error` line
    assert caught.value.error


async def test_an_alias_answers_under_its_own_name_in_passthrough(served: Served) -> None:
    """The engine gets its own model name; the client reads back the one it asked for."""
    fake, client = await served("ollama", aliases={"fast": [MODEL]})
    answer = await client.chat(model="fast", messages=HI)
    assert answer.model == "fast"
    assert fake.last.json["model"] == MODEL
    parts = [p async for p in await client.chat(model="fast", messages=HI, stream=True)]
    assert {p.model for p in parts} == {"fast"}


async def test_openapi_lists_the_ollama_routes(served: Served) -> None:
    from tests.gateway.helpers import get

    _fake, client = await served("llamacpp")
    url = str(client._client.base_url).rstrip("/")
    status, _, raw = await get(url, "/openapi.json")
    assert status == 200
    paths = json.loads(raw)["paths"]
    for path in ("/api/chat", "/api/generate"):
        content = paths[path]["post"]["responses"]["200"]["content"]
        assert "application/x-ndjson" in content


@pytest.mark.parametrize("kind", ENGINES)
async def test_usage_is_metered_relayed_or_transcoded(served: Served, kind: str) -> None:
    """The meter reads Ollama's done line on passthrough (prompt_eval_count, eval_count),
    as the transcoder reads the engine's usage: the same counts reach /metrics."""
    from tests.gateway.helpers import get, sample, scrape

    fake, client = await served(kind)
    fake.default_reply = Reply(text="Counted.", usage=(13, 4))
    await client.chat(model=MODEL, messages=HI)
    _parts = [p async for p in await client.chat(model=MODEL, messages=HI, stream=True)]
    _parts += [p async for p in await client.generate(model=MODEL, prompt="hi", stream=True)]
    url = str(client._client.base_url).rstrip("/")
    _, _, text = await get(url, "/metrics")
    s = scrape(text.decode())
    engine = f"{kind}:{fake.url}"
    assert sample(s, "modelport_tokens_total", model=MODEL, backend=engine, direction="in") == 39
    assert sample(s, "modelport_tokens_total", model=MODEL, backend=engine, direction="out") == 12
    requests = "modelport_requests_total"
    assert sample(s, requests, model=MODEL, backend=engine, status="200", format="ollama") == 2
    generate = sample(
        s, requests, model=MODEL, backend=engine, status="200", format="ollama-generate"
    )
    assert generate == 1

"""/api/generate through the gateway, driven by the `ollama` library: passthrough to an
Ollama engine, transcoding to an OpenAI-compatible one and to the mock backend."""

from __future__ import annotations

import json

import ollama
import pytest

from tests.fakes import Reply
from tests.gateway.helpers import post
from tests.gateway.ollama_helpers import (
    ENGINES,
    MODEL,
    PNG,
    VISION,
    Served,
    engine_body,
    served_fixture,  # noqa: F401  (the `served` fixture)
)


@pytest.mark.parametrize("kind", ENGINES)
async def test_generate_whole(served: Served, kind: str) -> None:
    fake, client = await served(kind)
    fake.default_reply = Reply(text="Hi!", usage=(4, 2))
    answer = await client.generate(model=MODEL, prompt="say hi", system="be brief")
    assert answer.response == "Hi!"
    assert answer.done is True and answer.done_reason == "stop"
    assert (answer.prompt_eval_count, answer.eval_count) == (4, 2)
    assert isinstance(answer.eval_duration, int)
    sent = engine_body(fake)
    if kind == "ollama":
        assert fake.requests_to("/api/generate") and sent["prompt"] == "say hi"
    else:  # a one-user-message chat under the system prompt
        assert sent["messages"] == [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "say hi"},
        ]


@pytest.mark.parametrize("kind", ENGINES)
async def test_generate_stream(served: Served, kind: str) -> None:
    fake, client = await served(kind)
    fake.default_reply = Reply(text="Hello, streamed.", usage=(5, 3), chunk_chars=3)
    parts = [p async for p in await client.generate(model=MODEL, prompt="say hi", stream=True)]
    assert "".join(p.response for p in parts) == "Hello, streamed."
    assert parts[-1].done is True and (parts[-1].prompt_eval_count, parts[-1].eval_count) == (
        5,
        3,
    )
    assert all(not p.done for p in parts[:-1])


@pytest.mark.parametrize("kind", ENGINES)
async def test_generate_think_images_options(served: Served, kind: str) -> None:
    fake, client = await served(kind, models=[VISION])
    fake.default_reply = Reply(text="A dot.", thinking="Tiny image.")
    options = {"temperature": 0.5, "num_predict": 16}
    answer = await client.generate(
        model=VISION, prompt="what is it", images=[PNG], think=True, options=options
    )
    assert (answer.response, answer.thinking) == ("A dot.", "Tiny image.")
    sent = engine_body(fake)
    if kind == "ollama":
        assert sent["images"] == [PNG] and sent["options"] == options and sent["think"] is True
    else:
        parts = sent["messages"][0]["content"]
        assert {"type": "text", "text": "what is it"} in parts
        assert (sent["temperature"], sent["max_tokens"]) == (0.5, 16)


async def test_suffix_passes_through_to_ollama(served: Served) -> None:
    fake, client = await served("ollama")
    await client.generate(model=MODEL, prompt="def add(a, b):\n    ", suffix="\n    return c")
    assert engine_body(fake)["suffix"] == "\n    return c"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"suffix": "\n    return c"}, "suffix"),
        ({"raw": True}, "raw"),
        ({"context": [1, 2, 3]}, "context"),
        ({"template": "{{ .Prompt }}"}, "template"),
    ],
)
async def test_ollama_only_fields_are_refused_by_name_when_transcoding(
    served: Served, kw: dict[str, object], field: str
) -> None:
    fake, client = await served("llamacpp")
    with pytest.raises(ollama.ResponseError) as caught:
        await client.generate(model=MODEL, prompt="def add(a, b):", **kw)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    # The field table's refusal (wire/ollama/fields.py): the field, then the engine.
    assert caught.value.error.startswith(f"{field}: ")
    assert "is not supported by llamacpp" in caught.value.error
    assert not fake.requests_to("/v1/chat/completions")


async def test_raw_false_and_an_empty_context_ask_for_nothing(served: Served) -> None:
    _fake, client = await served("llamacpp")
    answer = await client.generate(model=MODEL, prompt="hi", raw=False, context=[])
    assert answer.response


async def test_the_mock_backend_serves_chat_and_generate(gateway) -> None:  # type: ignore[no-untyped-def]
    _gw, url = await gateway(backends=[{"kind": "mock"}])
    client = ollama.AsyncClient(host=url, timeout=10.0)
    try:
        answer = await client.chat(model="mock-model", messages=[{"role": "user", "content": "x"}])
        assert answer.message.content == "Hello world"
        assert (answer.prompt_eval_count, answer.eval_count) == (3, 2)
        parts = [
            p async for p in await client.generate(model="mock-model", prompt="x", stream=True)
        ]
        assert "".join(p.response for p in parts) == "Hello world" and parts[-1].done
    finally:
        await client._client.aclose()


async def test_a_bad_generate_body_is_400(served: Served) -> None:
    _fake, client = await served("llamacpp")
    url = str(client._client.base_url).rstrip("/")
    status, _headers, raw = await post(url, "/api/generate", {"model": MODEL, "prompt": 3})
    assert status == 400
    assert json.loads(raw) == {"error": "prompt: expected a string, got number"}
    status, _headers, raw = await post(url, "/api/generate", {"model": MODEL, "prompt": ""})
    assert status == 400 and "prompt: must not be empty" in json.loads(raw)["error"]

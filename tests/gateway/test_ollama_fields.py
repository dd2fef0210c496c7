"""The Ollama dialect's field table end to end (issue 10, point 7): `options` an Ollama client
sets reach another engine under its names, are dropped by name, or refused naming the field
(docs/fields.md, "Ollama API (client dialect)"). The client is the `ollama` library (0.6.3);
the engines are protocol fakes: llama-server (OpenAI-compatible) and Anthropic's Messages.
"""

from __future__ import annotations

import json
from typing import Any

import ollama
import pytest

from tests.captures import client_requests
from tests.fakes import Reply
from tests.gateway.helpers import post
from tests.gateway.ollama_helpers import (
    MODEL,
    Served,
    engine_body,
    served_fixture,  # noqa: F401  (the `served` fixture)
)

HI = [{"role": "user", "content": "hi"}]


async def _anthropic(fake_engine: Any, gateway: Any) -> tuple[Any, str]:
    fake = await fake_engine("anthropic", models=[MODEL], api_key="k")
    backend = {"kind": "anthropic", "url": fake.url, "api_key_env": "K"}
    _gw, url = await gateway(backends=[backend], env={"K": "k"})
    return fake, url


async def test_chat_options_reach_an_openai_compatible_engine_under_its_names(
    served: Served,
) -> None:
    fake, client = await served("llamacpp")
    fake.replies.append(Reply(text="ok"))
    options = {"seed": 7, "top_k": 20, "min_p": 0.05, "repeat_penalty": 1.1, "num_ctx": 4096}
    answer = await client.chat(MODEL, messages=HI, options=options, keep_alive="5m")
    assert answer.message.content == "ok"
    sent = engine_body(fake)
    assert (sent["seed"], sent["top_k"], sent["min_p"]) == (7, 20, 0.05)
    assert sent["repeat_penalty"] == 1.1  # llama-server's name
    # dropped by name: engine-load settings the gateway does not own
    assert not {"num_ctx", "keep_alive", "options"} & set(sent)


async def test_generate_options_reach_an_openai_compatible_engine(served: Served) -> None:
    fake, client = await served("llamacpp")
    fake.replies.append(Reply(text="ok"))
    answer = await client.generate(MODEL, "hi", options={"seed": 7, "top_k": 20})
    assert answer.response == "ok"
    sent = engine_body(fake)
    assert (sent["seed"], sent["top_k"]) == (7, 20)


async def test_chat_top_k_reaches_an_anthropic_engine(fake_engine: Any, gateway: Any) -> None:
    fake, url = await _anthropic(fake_engine, gateway)
    fake.replies.append(Reply(text="ok"))
    client = ollama.AsyncClient(host=url, timeout=10.0)
    try:
        answer = await client.chat(MODEL, messages=HI, options={"top_k": 20, "num_gpu": 1})
    finally:
        await client._client.aclose()
    assert answer.message.content == "ok"
    sent = engine_body(fake)
    assert sent["top_k"] == 20
    assert not {"num_gpu", "options"} & set(sent)


@pytest.mark.parametrize(("option", "value"), [("seed", 7), ("presence_penalty", 0.5)])
async def test_an_option_anthropic_lacks_is_refused_naming_it(
    option: str, value: Any, fake_engine: Any, gateway: Any
) -> None:
    fake, url = await _anthropic(fake_engine, gateway)
    client = ollama.AsyncClient(host=url, timeout=10.0)
    try:
        with pytest.raises(ollama.ResponseError) as caught:
            await client.chat(MODEL, messages=HI, options={option: value, "top_k": 20})
    finally:
        await client._client.aclose()
    assert caught.value.status_code == 400
    assert caught.value.error.startswith(f"options.{option}: {value} is not supported by ")
    assert not [r for r in fake.requests if r.path == "/v1/messages"]


async def test_an_unknown_option_is_refused_as_ollama_json(served: Served) -> None:
    fake, client = await served("llamacpp")
    body = {"model": MODEL, "messages": HI, "stream": False, "options": {"warp": 9}}
    status, _headers, raw = await post(str(client._client.base_url), "/api/chat", body)
    assert status == 400, raw
    assert json.loads(raw)["error"].startswith("options.warp: 9 is not supported by llamacpp")
    assert not [r for r in fake.requests if r.path == "/v1/chat/completions"]


# Every /api/chat and /api/generate body ollama-python and ollama-js sent, but the
# fill-in-the-middle one (`suffix`: refused by name, /v1/completions serves it) and those
# with images (the fake's model is text-only).
CAPTURES = [
    c
    for pattern in ("ollama-py-*.jsonl", "ollama-js-*.jsonl")
    for c in client_requests(pattern)
    if c.path in ("/api/chat", "/api/generate")
    and "suffix" not in c.body
    and not c.body.get("images")
    and not any(m.get("images") for m in c.body.get("messages", []))
]


@pytest.mark.parametrize("target", ["llamacpp", "anthropic"])
async def test_ollama_client_captures_are_never_refused_when_transcoded(
    target: str, served: Served, fake_engine: Any, gateway: Any
) -> None:
    assert len(CAPTURES) >= 10
    if target == "anthropic":
        fake, url = await _anthropic(fake_engine, gateway)
    else:
        fake, client = await served("llamacpp")
        url = str(client._client.base_url)
    fake.default_reply = Reply(text="ok")
    for capture in CAPTURES:
        if target == "anthropic" and capture.body.get("format") == "json":
            continue  # JSON mode without a schema: Anthropic has none (docs/fields.md, format)
        status, _headers, raw = await post(url, capture.path, {**capture.body, "model": MODEL})
        assert status == 200, (capture.name, raw[:300])


# -- the durations of a whole transcoded answer -------------------------------------------


@pytest.mark.parametrize("endpoint", ["chat", "generate"])
async def test_a_whole_transcoded_answer_reports_measured_durations(
    endpoint: str, served: Served
) -> None:
    """The engine takes 0.2 s (the fake's delay): the durations say so, in nanoseconds."""
    fake, client = await served("llamacpp")
    fake.replies.append(Reply(text="ok", delay_s=0.2))
    if endpoint == "chat":
        answer: Any = await client.chat(MODEL, messages=HI)
    else:
        answer = await client.generate(MODEL, "hi")
    total, load, evaluation = answer.total_duration, answer.load_duration, answer.eval_duration
    assert 0.2e9 <= evaluation <= total < 5e9, (total, evaluation)
    assert 0 <= load < total  # routing and queueing before the engine was asked
    assert answer.prompt_eval_duration == 0  # a whole answer has no first token to split at
    assert load + evaluation <= total
    assert (answer.prompt_eval_count, answer.eval_count) == (7, 5)
